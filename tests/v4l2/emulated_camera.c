/*
 * A V4L2 capture device emulated in user space, for the tests of the daemon's
 * V4L2 camera path on machines without a camera or kernel modules.
 *
 * Loaded with LD_PRELOAD into the daemon, it answers the libc calls that
 * FFmpeg's and OpenCV's V4L2 readers and the daemon's own device questions
 * make on one node (open, ioctl, mmap, close): the capability, format,
 * frame-rate, buffer and control ioctls of linux/videodev2.h, the way a UVC
 * camera's driver answers them. Every other file descriptor goes to libc
 * untouched. The pictures (H.264, MJPEG or raw YUYV) are read from files and
 * delivered at the frame rate the reader set, into the buffers it queued.
 *
 * Configured by the environment:
 *   INTERCOM_V4L2_NODE     the node's path, e.g. /dev/video42 (need not exist)
 *   INTERCOM_V4L2_STREAMS  up to four "FOURCC:WIDTHxHEIGHT:FPS:FILE" items,
 *                          separated by ";", in the order ENUM_FMT lists them.
 *                          FILE holds records: a little-endian u32 length, a
 *                          u32 of flags (1: a keyframe), the picture's bytes.
 *   INTERCOM_V4L2_DIR      a directory: the device appends what it is asked
 *                          to "log" (one line each) and behaves as unplugged
 *                          while a file "unplugged" exists there, as a camera
 *                          that stopped sending while "stalled" does.
 *   INTERCOM_V4L2_KEYFRAME_CONTROL  "0": no V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME.
 * Asked for a keyframe, an H.264 stream goes on from its next keyframe record.
 * read(), poll(), select() and readlink() of /proc/self/fd/N answer for the
 * device's descriptors as the kernel does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "camera_device.h"

#define MAX_FDS 16

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int fds[MAX_FDS]; /* the descriptors open on the node */
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static ssize_t (*real_read)(int, void *, size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
static ssize_t (*real_readlink)(const char *, char *, size_t);

static void initialise(void)
{
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_read = dlsym(RTLD_NEXT, "read");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    real_poll = dlsym(RTLD_NEXT, "poll");
    real_select = dlsym(RTLD_NEXT, "select");
    real_readlink = dlsym(RTLD_NEXT, "readlink");
    for (int i = 0; i < MAX_FDS; i++)
        fds[i] = -1;
    load_device();
}

static void set_up(void) { pthread_once(&once, initialise); }

static int is_emulated(int fd)
{
    for (int i = 0; i < MAX_FDS; i++)
        if (fds[i] == fd && fd >= 0)
            return 1;
    return 0;
}

static int open_node(int flags)
{
    if (flag_file("unplugged")) {
        errno = ENOENT;
        return -1;
    }
    int fd = eventfd(0, EFD_CLOEXEC | (flags & O_NONBLOCK ? EFD_NONBLOCK : 0));
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_FDS; i++)
        if (fds[i] < 0) {
            fds[i] = fd;
            pthread_mutex_unlock(&lock);
            note("open");
            return fd;
        }
    pthread_mutex_unlock(&lock);
    real_close(fd);
    errno = EBUSY;
    return -1;
}

static int wanted(const char *path)
{
    set_up();
    return device.node[0] && path && strcmp(path, device.node) == 0;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    mode_t mode = va_arg(args, mode_t);
    va_end(args);
    if (wanted(path))
        return open_node(flags);
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int open(const char *path, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    mode_t mode = va_arg(args, mode_t);
    va_end(args);
    return openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int close(int fd)
{
    set_up();
    pthread_mutex_lock(&lock);
    if (is_emulated(fd)) {
        for (int i = 0; i < MAX_FDS; i++)
            if (fds[i] == fd)
                fds[i] = -1;
        if (device.owner == fd) {
            stop_streaming();
            device.owner = -1;
            device.buffer_count = 0;
        }
        pthread_mutex_unlock(&lock);
        note("close");
    } else {
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

void *mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset)
{
    set_up();
    if (!is_emulated(fd))
        return real_mmap(address, length, protection, flags, fd, offset);
    pthread_mutex_lock(&lock);
    uint32_t index = device.buffer_length ? offset / device.buffer_length : MAX_BUFFERS;
    if (fd != device.owner || index >= device.buffer_count || length > device.buffer_length) {
        pthread_mutex_unlock(&lock);
        errno = EINVAL;
        return MAP_FAILED;
    }
    void *mapped = real_mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped != MAP_FAILED)
        device.buffers[index] = mapped;
    pthread_mutex_unlock(&lock);
    return mapped;
}

void *mmap64(void *address, size_t length, int protection, int flags, int fd, off_t offset)
    __attribute__((alias("mmap")));

int ioctl(int fd, unsigned long request, ...)
{
    va_list args;
    va_start(args, request);
    void *argument = va_arg(args, void *);
    va_end(args);
    set_up();
    if (!is_emulated(fd))
        return real_ioctl(fd, request, argument);
    pthread_mutex_lock(&lock);
    int result = answer(fd, request, argument);
    int error = errno;
    pthread_mutex_unlock(&lock);
    errno = error;
    return result;
}

/* Wait until the device has a filled buffer (1), is unplugged (-1), or
 * timeout_ms passed (0; a negative timeout waits for ever). */
static int wait_for_frame(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_nsec -= 1000000000L;
            until.tv_sec++;
        }
    }
    for (;;) {
        if (flag_file("unplugged"))
            return -1;
        pthread_mutex_lock(&lock);
        int ready = frame_ready();
        pthread_mutex_unlock(&lock);
        if (ready)
            return 1;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (timeout_ms >= 0 && !later(&until, &now))
            return 0;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

/* A capture device is readable once a filled buffer can be dequeued; an
 * unplugged one reports an error. FFmpeg's reader waits in poll (the daemon
 * does it for FFmpeg), OpenCV's in select. */
/* A driver that streams through buffers only (no V4L2_CAP_READWRITE). */
ssize_t read(int fd, void *buffer, size_t size)
{
    set_up();
    if (!is_emulated(fd))
        return real_read(fd, buffer, size);
    errno = EINVAL;
    return -1;
}

int poll(struct pollfd *fds, nfds_t count, int timeout)
{
    set_up();
    if (count != 1 || !is_emulated(fds[0].fd))
        return real_poll(fds, count, timeout);
    int state = wait_for_frame(timeout);
    fds[0].revents = state < 0 ? POLLERR : state ? fds[0].events & (POLLIN | POLLRDNORM) : 0;
    return fds[0].revents ? 1 : 0;
}

int select(int count, fd_set *readable, fd_set *writable, fd_set *failed, struct timeval *timeout)
{
    set_up();
    int fd = count - 1;
    if (fd < 0 || !readable || !FD_ISSET(fd, readable) || !is_emulated(fd))
        return real_select(count, readable, writable, failed, timeout);
    int state = wait_for_frame(timeout ? (int)(timeout->tv_sec * 1000 + timeout->tv_usec / 1000) : -1);
    FD_ZERO(readable);
    if (writable)
        FD_ZERO(writable);
    if (failed)
        FD_ZERO(failed);
    if (state > 0)
        FD_SET(fd, readable);
    else if (state < 0 && failed)
        FD_SET(fd, failed);
    return state != 0 ? 1 : 0;
}

/* /proc/self/fd/N of the emulated device names its node, as the kernel's does. */
ssize_t readlink(const char *path, char *target, size_t size)
{
    int fd;
    char rest;
    set_up();
    if (sscanf(path, "/proc/self/fd/%d%c", &fd, &rest) == 1 && is_emulated(fd)) {
        size_t length = strlen(device.node);
        if (length > size)
            length = size;
        memcpy(target, device.node, length);
        return (ssize_t)length;
    }
    return real_readlink(path, target, size);
}
