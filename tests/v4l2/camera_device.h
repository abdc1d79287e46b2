/* The emulated camera's state, shared by what answers for it: the device's
 * own questions (camera_device.c) and its buffers and pictures
 * (camera_buffers.c). emulated_camera.c routes libc's calls to them. */
#ifndef CAMERA_DEVICE_H
#define CAMERA_DEVICE_H

#include <linux/videodev2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAX_STREAMS 4
#define MAX_BUFFERS 32 /* uvcvideo's limit */
#define FORCE_KEY_FRAME (V4L2_CID_CODEC_BASE + 229)

struct record {
    const uint8_t *data;
    uint32_t size;
    int keyframe;
};

struct stream {
    uint32_t fourcc;
    uint32_t width, height, fps;
    struct record *records;
    size_t count;
    uint32_t largest;
};

struct device {
    char node[256];
    char dir[512];
    int keyframe_control;
    struct stream streams[MAX_STREAMS];
    int stream_count;
    /* What the reader set and where the pictures are. */
    int current;
    uint32_t fps;
    int owner; /* the descriptor that requested the buffers, or -1 */
    uint32_t buffer_count, buffer_length;
    void *buffers[MAX_BUFFERS];
    int queue[MAX_BUFFERS]; /* queued buffer indexes, in order */
    uint32_t queued;
    int streaming;
    struct timespec due;
    size_t cursor;
    uint32_t sequence;
    int keyframe_asked;
};

extern struct device device;
extern pthread_mutex_t lock;

/* camera_device.c */
void load_device(void);
void note(const char *format, ...);
int flag_file(const char *name);
int fail(int error);
struct stream *current(void);
int answer(int fd, unsigned long request, void *argument);

/* camera_buffers.c, all called with the lock held */
int answer_about_buffers(int fd, unsigned long request, void *argument);
int frame_ready(void);
void stop_streaming(void);
int later(const struct timespec *a, const struct timespec *b);

#endif
