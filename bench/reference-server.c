/*
 * The live fan-out bench's reference: a minimal MJPEG server in C, compiled with gcc at bench
 * time (bench/lib/live-server-reference.ts). It reads stamped frames (bench/lib/live-frames.ts)
 * from standard input, non-blocking, keeping only the newest whole frame of each read burst, and
 * writes each new frame, encoded once as a multipart part, to every viewer with one non-blocking
 * send(); a viewer whose socket took only part of a frame is busy and skips frames until epoll says
 * it has taken the rest, and then gets the newest frame if it has not had it (serverpush's policy:
 * latest wins, at most one frame pending). One thread, one epoll set, level-triggered. No HTTP parsing beyond
 * waiting for the request's first bytes. The frame length comes from the stamp.
 *
 *   reference-server PORT_FILE [NOTSENT_LOWAT]   (stdin: the frames; writes `PORT PID` to PORT_FILE)
 *
 * With NOTSENT_LOWAT > 0 every accepted socket gets TCP_NOTSENT_LOWAT = that many bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define STAMP_AT 6      /* SOI, COM marker, COM length */
#define STAMP_BYTES 44  /* "sp-ts:" 16 digits ":" 10 digits ":" 10 digits */

typedef struct { int refs; unsigned long seq; size_t len; char bytes[]; } Part;
typedef struct { int open, started, busy; Part *part; size_t off; unsigned long sent; } Viewer;

static Viewer viewers[MAX_FD];
static int fds[MAX_FD], nfds;
static Part *latest;
static int ep;
static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=ref\r\n"
                           "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";

static void release(Part *p) { if (p && --p->refs == 0) free(p); }
static void offer(int fd, Part *p);

static void drop(int fd) {
  Viewer *v = &viewers[fd];
  release(v->part);
  memset(v, 0, sizeof *v);
  for (int i = 0; i < nfds; i++) if (fds[i] == fd) { fds[i] = fds[--nfds]; break; }
  close(fd);
}

static void watch(int fd, unsigned events) {
  struct epoll_event e = { .events = events, .data.fd = fd };
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

/* Writes the rest of the viewer's part; busy (waits for EPOLLOUT) when the socket took only some. */
static void flush(int fd) {
  Viewer *v = &viewers[fd];
  while (v->off < v->part->len) {
    ssize_t n = send(fd, v->part->bytes + v->off, v->part->len - v->off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!v->busy) watch(fd, EPOLLIN | EPOLLOUT);
      v->busy = 1;
      return;
    }
    if (n <= 0) { drop(fd); return; }
    v->off += (size_t)n;
  }
  release(v->part);
  v->part = NULL;
  if (v->busy) {
    watch(fd, EPOLLIN);
    v->busy = 0;
    if (latest && latest->seq != v->sent) offer(fd, latest);
  }
}

static void offer(int fd, Part *p) {
  Viewer *v = &viewers[fd];
  if (v->busy || !v->started) return; /* skip busy sockets */
  p->refs++;
  v->part = p;
  v->off = 0;
  v->sent = p->seq;
  flush(fd);
}

static Part *encode(const char *jpeg, size_t len) {
  char hdr[128];
  int h = snprintf(hdr, sizeof hdr, "--ref\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n", len);
  Part *p = malloc(sizeof *p + (size_t)h + len + 2);
  static unsigned long seq;
  p->refs = 1;
  p->seq = ++seq;
  memcpy(p->bytes, hdr, (size_t)h);
  memcpy(p->bytes + h, jpeg, len);
  memcpy(p->bytes + h + len, "\r\n", 2);
  p->len = (size_t)h + len + 2;
  return p;
}

static char *in;
static size_t in_len, in_cap = 1 << 20;

/* Reads what stdin has, splits whole frames by their stamped length, publishes only the newest. */
static void read_frames(void) {
  const char *newest = NULL;
  size_t newest_len = 0, used = 0;
  for (;;) {
    if (in_cap - in_len < 65536) in = realloc(in, in_cap *= 2);
    ssize_t n = read(0, in + in_len, in_cap - in_len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) exit(0); /* the generator has gone */
    in_len += (size_t)n;
    while (in_len - used >= STAMP_AT + STAMP_BYTES) {
      size_t len = strtoul(in + used + STAMP_AT + 34, NULL, 10);
      if (len < STAMP_AT + STAMP_BYTES || in_len - used < len) break;
      newest = in + used;
      newest_len = len;
      used += len;
    }
  }
  if (newest) {
    Part *p = encode(newest, newest_len);
    release(latest);
    latest = p;
    for (int i = nfds - 1; i >= 0; i--) offer(fds[i], p);
  }
  memmove(in, in + used, in_len - used);
  in_len -= used;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int lowat = argc > 2 ? atoi(argv[2]) : 0;
  signal(SIGPIPE, SIG_IGN);
  in = malloc(in_cap);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t alen = sizeof addr;
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 4096)) { perror("listen"); return 1; }
  getsockname(ls, (struct sockaddr *)&addr, &alen);
  FILE *pf = fopen(argv[1], "w");
  fprintf(pf, "%d %d\n", ntohs(addr.sin_port), (int)getpid());
  fclose(pf);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  ep = epoll_create1(0);
  struct epoll_event e = { .events = EPOLLIN, .data.fd = ls }, events[1024];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
  e.data.fd = 0;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
  for (;;) {
    int n = epoll_wait(ep, events, 1024, -1);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= MAX_FD) { close(c); continue; }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (lowat > 0) setsockopt(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
          viewers[c].open = 1;
          fds[nfds++] = c;
          struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
      } else if (fd == 0) {
        read_frames();
      } else if (viewers[fd].open) {
        Viewer *v = &viewers[fd];
        if (events[i].events & EPOLLIN) {
          char scratch[4096];
          ssize_t r = recv(fd, scratch, sizeof scratch, 0);
          if (r == 0 || (r < 0 && errno != EAGAIN)) { drop(fd); continue; }
          if (!v->started) {
            /* The request has come: the head (it fits in an empty socket buffer), then the newest frame. */
            if (send(fd, head, sizeof head - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof head - 1)) { drop(fd); continue; }
            v->started = 1;
            if (latest) offer(fd, latest);
          }
        }
        if (v->open && (events[i].events & EPOLLOUT) && v->busy) flush(fd);
        if (v->open && (events[i].events & (EPOLLERR | EPOLLHUP))) drop(fd);
      }
    }
  }
}
