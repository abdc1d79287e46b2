/* The emulated camera's buffers and pictures: requested, mapped, queued,
 * filled at the frame rate from the current recording and dequeued, as a
 * V4L2 capture driver's are (see emulated_camera.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "camera_device.h"

void stop_streaming(void)
{
    device.streaming = 0;
    device.queued = 0;
}

static void advance(struct timespec *time, uint32_t fps)
{
    long step = 1000000000L / (fps ? fps : 15);
    time->tv_nsec += step;
    while (time->tv_nsec >= 1000000000L) {
        time->tv_nsec -= 1000000000L;
        time->tv_sec++;
    }
}

int later(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Called with the lock held. */
int frame_ready(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return device.streaming && device.queued > 0 && !flag_file("stalled") && !later(&device.due, &now);
}

/* Called with the lock held; returns with it held. */
static int dequeue(int fd, struct v4l2_buffer *buffer)
{
    if (fd != device.owner || !device.streaming) {
        errno = EINVAL;
        return -1;
    }
    int blocking = !(fcntl(fd, F_GETFL) & O_NONBLOCK);
    for (;;) {
        if (flag_file("unplugged")) {
            errno = ENODEV;
            return -1;
        }
        if (frame_ready())
            break;
        if (!blocking) {
            errno = EAGAIN;
            return -1;
        }
        pthread_mutex_unlock(&lock);
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
        if (fd != device.owner || !device.streaming) {
            errno = EINVAL;
            return -1;
        }
    }
    struct stream *stream = current();
    if (device.keyframe_asked && stream->fourcc == V4L2_PIX_FMT_H264) {
        size_t at = device.cursor % stream->count;
        for (size_t tried = 0; tried < stream->count && !stream->records[at].keyframe; tried++)
            at = (at + 1) % stream->count;
        device.cursor = at;
    }
    device.keyframe_asked = 0;
    struct record *record = &stream->records[device.cursor % stream->count];
    device.cursor++;
    int index = device.queue[0];
    memmove(device.queue, device.queue + 1, (device.queued - 1) * sizeof device.queue[0]);
    device.queued--;
    if (device.buffers[index])
        memcpy(device.buffers[index], record->data, record->size);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    advance(&device.due, device.fps);
    if (later(&now, &device.due))
        device.due = now; /* a reader that fell behind: the camera does not queue up */
    memset(buffer, 0, sizeof *buffer);
    buffer->index = index;
    buffer->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buffer->memory = V4L2_MEMORY_MMAP;
    buffer->bytesused = record->size;
    buffer->length = device.buffer_length;
    buffer->m.offset = index * device.buffer_length;
    buffer->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC |
                    (record->keyframe ? V4L2_BUF_FLAG_KEYFRAME : 0);
    buffer->field = V4L2_FIELD_NONE;
    buffer->sequence = device.sequence++;
    buffer->timestamp.tv_sec = now.tv_sec;
    buffer->timestamp.tv_usec = now.tv_nsec / 1000;
    return 0;
}

/* Called with the lock held. */
int answer_about_buffers(int fd, unsigned long request, void *argument)
{
    switch (request) {
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *request_buffers = argument;
        if (request_buffers->type != V4L2_BUF_TYPE_VIDEO_CAPTURE ||
            request_buffers->memory != V4L2_MEMORY_MMAP)
            return fail(EINVAL);
        if (device.owner >= 0 && device.owner != fd)
            return fail(EBUSY);
        stop_streaming();
        uint32_t count = request_buffers->count;
        count = count > MAX_BUFFERS ? MAX_BUFFERS : count;
        device.buffer_count = count;
        device.owner = count ? fd : -1;
        device.buffer_length = (current()->largest + 4095) & ~4095u;
        memset(device.buffers, 0, sizeof device.buffers);
        request_buffers->count = count;
        return 0;
    }
    case VIDIOC_QUERYBUF: {
        struct v4l2_buffer *buffer = argument;
        if (fd != device.owner || buffer->index >= device.buffer_count)
            return fail(EINVAL);
        buffer->length = device.buffer_length;
        buffer->m.offset = buffer->index * device.buffer_length;
        buffer->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
        return 0;
    }
    case VIDIOC_QBUF: {
        struct v4l2_buffer *buffer = argument;
        if (fd != device.owner || buffer->index >= device.buffer_count)
            return fail(EINVAL);
        for (uint32_t i = 0; i < device.queued; i++)
            if (device.queue[i] == (int)buffer->index)
                return fail(EINVAL);
        device.queue[device.queued++] = buffer->index;
        return 0;
    }
    case VIDIOC_STREAMON:
        if (fd != device.owner)
            return fail(EINVAL);
        device.streaming = 1;
        device.cursor = 0; /* a camera's encoder starts with a keyframe */
        clock_gettime(CLOCK_MONOTONIC, &device.due);
        note("stream on");
        return 0;
    case VIDIOC_STREAMOFF:
        if (fd != device.owner)
            return fail(EINVAL);
        stop_streaming();
        note("stream off");
        return 0;
    case VIDIOC_DQBUF:
        return dequeue(fd, argument);
    default:
        return fail(ENOTTY);
    }
}
