/*
 * serverpush's socket options helper: integer setsockopt/getsockopt on a socket's file descriptor,
 * which Node has no API for on TCP sockets. Built at install by node-gyp (binding.gyp); loaded by
 * src/adapters/socket-buffer.ts, which works without it (with a logged note).
 *
 *   set(fd, level, name, value) -> undefined   (throws an Error with .code = errno name)
 *   get(fd, level, name) -> number
 *   send(fd, bytes) -> bytes the kernel took, or -errno (EAGAIN: none); never blocks, no SIGPIPE
 *   constants: { SOL_SOCKET, SO_SNDBUF, IPPROTO_TCP, TCP_NOTSENT_LOWAT? }
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>

static napi_value fail(napi_env env, int error) {
  const char *code = error == EBADF ? "EBADF" : error == ENOTSOCK ? "ENOTSOCK" : error == ENOPROTOOPT ? "ENOPROTOOPT" : error == EINVAL ? "EINVAL" : "EIO";
  napi_throw_error(env, code, strerror(error));
  return NULL;
}

static int ints(napi_env env, napi_callback_info info, size_t want, int32_t *out) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return 0;
  }
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "arguments must be integers");
      return 0;
    }
  }
  return 1;
}

static napi_value set(napi_env env, napi_callback_info info) {
  int32_t a[4];
  if (!ints(env, info, 4, a)) return NULL;
  int value = a[3];
  if (setsockopt(a[0], a[1], a[2], &value, sizeof value) != 0) return fail(env, errno);
  return NULL;
}

static napi_value get(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (!ints(env, info, 3, a)) return NULL;
  int value = 0;
  socklen_t length = sizeof value;
  if (getsockopt(a[0], a[1], a[2], &value, &length) != 0) return fail(env, errno);
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static napi_value send_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t length;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_get_value_int32(env, argv[0], &fd) != napi_ok
      || napi_get_typedarray_info(env, argv[1], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "send(fd, Uint8Array)");
    return NULL;
  }
  ssize_t n;
  do n = send(fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  napi_value result;
  napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result);
  return result;
}

static void constant(napi_env env, napi_value object, const char *name, int value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, constants;
  napi_create_function(env, "set", NAPI_AUTO_LENGTH, set, NULL, &fn);
  napi_set_named_property(env, exports, "set", fn);
  napi_create_function(env, "get", NAPI_AUTO_LENGTH, get, NULL, &fn);
  napi_set_named_property(env, exports, "get", fn);
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, send_bytes, NULL, &fn);
  napi_set_named_property(env, exports, "send", fn);
  napi_create_object(env, &constants);
  constant(env, constants, "SOL_SOCKET", SOL_SOCKET);
  constant(env, constants, "SO_SNDBUF", SO_SNDBUF);
  constant(env, constants, "IPPROTO_TCP", IPPROTO_TCP);
  constant(env, constants, "EAGAIN", EAGAIN);
#ifdef TCP_NOTSENT_LOWAT
  constant(env, constants, "TCP_NOTSENT_LOWAT", TCP_NOTSENT_LOWAT);
#endif
  napi_set_named_property(env, exports, "constants", constants);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
