/*
 * The reference of bench/watch-rate.ts: a minimal inotify-fed MJPEG server, what mjpg-streamer's
 * input_file does with none of its options. It watches DIR for NAME being renamed in or closed after
 * writing (IN_MOVED_TO | IN_CLOSE_WRITE), reads the file at once (open, fstat, read, by one fd) and
 * sends it as one part of a multipart/x-mixed-replace response to every client; a client whose
 * socket is still busy gets the newest frame when it drains (latest wins), as serverpush does.
 * One thread, poll(2), non-blocking sockets, Nagle off.
 *
 *   gcc -O2 -o watch-reference watch-reference.c && ./watch-reference DIR NAME PORT
 *
 * Prints "port N" on stdout once listening (PORT 0 picks one). Linux only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CLIENTS 2048
#define HEAD "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=ref\r\n" \
             "Cache-Control: no-cache\r\nConnection: close\r\n\r\n"

struct client { int fd; char *buf; size_t len, off; unsigned long seq; };
static struct client clients[MAX_CLIENTS];
static int nclients;
static char *part; /* the latest frame as one part: headers, body, CRLF */
static size_t part_len;
static unsigned long part_seq;

/* Starts sending the latest part to a client that is not busy; writes what the socket takes. */
static int flush(struct client *c) {
  for (;;) {
    if (c->off == c->len) {
      if (!part || c->seq == part_seq) return 0;
      c->buf = realloc(c->buf, part_len);
      memcpy(c->buf, part, part_len);
      c->len = part_len, c->off = 0, c->seq = part_seq;
    }
    ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->off += (size_t)n;
  }
}

static void drop(int i) {
  close(clients[i].fd);
  free(clients[i].buf);
  clients[i] = clients[--nclients];
}

/* Reads DIR/NAME by one fd into a new part. */
static void load(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY);
  struct stat st;
  if (fd < 0) return;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    char head[128];
    int h = snprintf(head, sizeof head, "--ref\r\nContent-Type: image/jpeg\r\nContent-Length: %lld\r\n\r\n", (long long)st.st_size);
    char *next = malloc((size_t)h + (size_t)st.st_size + 2);
    memcpy(next, head, (size_t)h);
    ssize_t got = 0, n;
    while (got < st.st_size && (n = pread(fd, next + h + got, (size_t)(st.st_size - got), got)) > 0) got += n;
    if (got == st.st_size) {
      memcpy(next + h + got, "\r\n", 2);
      free(part);
      part = next, part_len = (size_t)h + (size_t)got + 2, part_seq++;
    } else {
      free(next);
    }
  }
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 4) return fprintf(stderr, "usage: %s DIR NAME PORT\n", argv[0]), 2;
  signal(SIGPIPE, SIG_IGN);
  int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY);
  int in = inotify_init1(IN_NONBLOCK);
  if (dirfd < 0 || in < 0 || inotify_add_watch(in, argv[1], IN_MOVED_TO | IN_CLOSE_WRITE) < 0) return perror(argv[1]), 1;
  load(dirfd, argv[2]);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t alen = sizeof addr;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 4096) < 0) return perror("listen"), 1;
  getsockname(ls, (struct sockaddr *)&addr, &alen);
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  static struct pollfd fds[MAX_CLIENTS + 2];
  static char events[64 * 1024], sink[4096];
  for (;;) {
    fds[0] = (struct pollfd){ .fd = ls, .events = POLLIN };
    fds[1] = (struct pollfd){ .fd = in, .events = POLLIN };
    for (int i = 0; i < nclients; i++) fds[i + 2] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN | (clients[i].off < clients[i].len ? POLLOUT : 0) };
    if (poll(fds, (nfds_t)nclients + 2, -1) < 0) continue;
    int fresh = 0;
    if (fds[1].revents & POLLIN) {
      ssize_t n = read(in, events, sizeof events);
      for (char *p = events; n > 0 && p < events + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        if (e->len && strcmp(e->name, argv[2]) == 0) fresh = 1;
        p += sizeof *e + e->len;
      }
      if (fresh) load(dirfd, argv[2]);
    }
    for (int i = nclients - 1; i >= 0; i--) {
      short r = fds[i + 2].revents;
      int gone = (r & (POLLERR | POLLHUP)) != 0;
      if (!gone && (r & POLLIN)) gone = read(clients[i].fd, sink, sizeof sink) <= 0; /* the request, or EOF */
      if (gone || ((fresh || (r & POLLOUT)) && flush(&clients[i]) < 0)) drop(i);
    }
    if (fds[0].revents & POLLIN) {
      int fd;
      while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        if (nclients == MAX_CLIENTS) { close(fd); continue; }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct client *c = &clients[nclients++];
        *c = (struct client){ .fd = fd, .buf = strdup(HEAD), .len = strlen(HEAD) };
        if (flush(c) < 0) drop(nclients - 1);
      }
    }
  }
}
