{
  "targets": [
    {
      "target_name": "socket_options",
      "sources": ["native/socket-options.c"],
      "conditions": [["OS=='win'", { "type": "none", "sources!": ["native/socket-options.c"] }]]
    }
  ]
}
