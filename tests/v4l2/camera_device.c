/* The emulated camera's answers about itself: its capabilities, input,
 * formats, frame rate and keyframe control, and the recordings it plays
 * (see emulated_camera.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "camera_device.h"

struct device device = {.owner = -1, .current = 0};
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void note(const char *format, ...)
{
    char path[600], line[256];
    va_list args;
    if (!device.dir[0])
        return;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    snprintf(path, sizeof path, "%s/log", device.dir);
    FILE *log = fopen(path, "a");
    if (log) {
        fprintf(log, "%s\n", line);
        fclose(log);
    }
}

int flag_file(const char *name)
{
    char path[600];
    struct stat info;
    if (!device.dir[0])
        return 0;
    snprintf(path, sizeof path, "%s/%s", device.dir, name);
    return stat(path, &info) == 0;
}

int fail(int error)
{
    errno = error;
    return -1;
}

struct stream *current(void) { return &device.streams[device.current]; }

static int load_stream(struct stream *stream, const char *item)
{
    char code[5] = {0}, file[400];
    if (sscanf(item, "%4[^:]:%ux%u:%u:%399[^;]", code, &stream->width, &stream->height,
               &stream->fps, file) != 5)
        return -1;
    stream->fourcc = v4l2_fourcc(code[0], code[1], code[2], code[3]);
    FILE *input = fopen(file, "rb");
    if (!input)
        return -1;
    fseek(input, 0, SEEK_END);
    long size = ftell(input);
    fseek(input, 0, SEEK_SET);
    uint8_t *bytes = malloc(size);
    if (!bytes || fread(bytes, 1, size, input) != (size_t)size) {
        fclose(input);
        return -1;
    }
    fclose(input);
    size_t capacity = 64;
    stream->records = malloc(capacity * sizeof *stream->records);
    for (long at = 0; at + 8 <= size;) {
        uint32_t length, flags;
        memcpy(&length, bytes + at, 4);
        memcpy(&flags, bytes + at + 4, 4);
        if ((uint64_t)at + 8 + length > (uint64_t)size)
            break;
        if (stream->count == capacity) {
            capacity *= 2;
            stream->records = realloc(stream->records, capacity * sizeof *stream->records);
        }
        stream->records[stream->count++] =
            (struct record){bytes + at + 8, length, (int)(flags & 1)};
        if (length > stream->largest)
            stream->largest = length;
        at += 8 + length;
    }
    return stream->count ? 0 : -1;
}

void load_device(void)
{
    const char *node = getenv("INTERCOM_V4L2_NODE");
    const char *streams = getenv("INTERCOM_V4L2_STREAMS");
    const char *dir = getenv("INTERCOM_V4L2_DIR");
    const char *control = getenv("INTERCOM_V4L2_KEYFRAME_CONTROL");
    device.keyframe_control = !(control && strcmp(control, "0") == 0);
    if (dir)
        snprintf(device.dir, sizeof device.dir, "%s", dir);
    if (!node || !streams)
        return;
    char *items = strdup(streams), *save = NULL;
    for (char *item = strtok_r(items, ";", &save); item && device.stream_count < MAX_STREAMS;
         item = strtok_r(NULL, ";", &save)) {
        if (load_stream(&device.streams[device.stream_count], item) == 0)
            device.stream_count++;
        else
            note("cannot load %s", item);
    }
    free(items);
    if (device.stream_count)
        snprintf(device.node, sizeof device.node, "%s", node);
    device.fps = device.streams[0].fps;
}

static void describe_format(struct v4l2_format *format, const struct stream *stream)
{
    memset(&format->fmt.pix, 0, sizeof format->fmt.pix);
    format->fmt.pix.width = stream->width;
    format->fmt.pix.height = stream->height;
    format->fmt.pix.pixelformat = stream->fourcc;
    format->fmt.pix.field = V4L2_FIELD_NONE;
    format->fmt.pix.sizeimage = stream->largest;
    if (stream->fourcc == V4L2_PIX_FMT_YUYV)
        format->fmt.pix.bytesperline = stream->width * 2;
    format->fmt.pix.colorspace = V4L2_COLORSPACE_SRGB;
}

/* Called with the lock held. */
int answer(int fd, unsigned long request, void *argument)
{
    switch (request) {
    case VIDIOC_QUERYCAP: {
        struct v4l2_capability *capability = argument;
        memset(capability, 0, sizeof *capability);
        snprintf((char *)capability->driver, sizeof capability->driver, "intercom-test");
        snprintf((char *)capability->card, sizeof capability->card, "Emulated camera");
        snprintf((char *)capability->bus_info, sizeof capability->bus_info, "platform:emulated");
        capability->version = 0x060100;
        capability->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        capability->capabilities = capability->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *description = argument;
        if (description->type != V4L2_BUF_TYPE_VIDEO_CAPTURE ||
            description->index >= (uint32_t)device.stream_count)
            return fail(EINVAL);
        struct stream *stream = &device.streams[description->index];
        uint32_t index = description->index, type = description->type;
        memset(description, 0, sizeof *description);
        description->index = index;
        description->type = type;
        description->flags = stream->fourcc == V4L2_PIX_FMT_YUYV ? 0 : V4L2_FMT_FLAG_COMPRESSED;
        description->pixelformat = stream->fourcc;
        snprintf((char *)description->description, sizeof description->description, "%.4s",
                 (const char *)&stream->fourcc);
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *size = argument;
        for (int i = 0; i < device.stream_count; i++)
            if (device.streams[i].fourcc == size->pixel_format && size->index == 0) {
                size->type = V4L2_FRMSIZE_TYPE_DISCRETE;
                size->discrete.width = device.streams[i].width;
                size->discrete.height = device.streams[i].height;
                return 0;
            }
        return fail(EINVAL);
    }
    case VIDIOC_G_INPUT:
        *(int *)argument = 0;
        return 0;
    case VIDIOC_S_INPUT:
        return *(int *)argument == 0 ? 0 : fail(EINVAL);
    case VIDIOC_ENUMINPUT: {
        struct v4l2_input *input = argument;
        if (input->index != 0)
            return fail(EINVAL);
        memset(input, 0, sizeof *input);
        snprintf((char *)input->name, sizeof input->name, "Camera 1");
        input->type = V4L2_INPUT_TYPE_CAMERA;
        return 0;
    }
    case VIDIOC_G_FMT:
    case VIDIOC_TRY_FMT:
    case VIDIOC_S_FMT: {
        struct v4l2_format *format = argument;
        if (format->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
            return fail(EINVAL);
        if (request == VIDIOC_G_FMT) {
            describe_format(format, current());
            return 0;
        }
        if (request == VIDIOC_S_FMT && device.owner >= 0 && device.buffer_count)
            return fail(EBUSY);
        int chosen = device.current;
        for (int i = 0; i < device.stream_count; i++)
            if (device.streams[i].fourcc == format->fmt.pix.pixelformat)
                chosen = i;
        if (request == VIDIOC_S_FMT) {
            uint32_t asked_width = format->fmt.pix.width, asked_height = format->fmt.pix.height;
            device.current = chosen;
            device.fps = current()->fps;
            note("set format %.4s %ux%u (asked %.4s %ux%u)", (const char *)&current()->fourcc,
                 current()->width, current()->height, (const char *)&format->fmt.pix.pixelformat,
                 asked_width, asked_height);
        }
        describe_format(format, &device.streams[chosen]);
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *parameters = argument;
        if (parameters->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
            return fail(EINVAL);
        if (request == VIDIOC_S_PARM) {
            struct v4l2_fract *asked = &parameters->parm.capture.timeperframe;
            if (asked->numerator && asked->denominator) {
                uint32_t fps = asked->denominator / asked->numerator;
                device.fps = fps < 1 ? 1 : fps > current()->fps ? current()->fps : fps;
            }
            note("set rate %u", device.fps);
        }
        memset(&parameters->parm, 0, sizeof parameters->parm);
        parameters->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        parameters->parm.capture.timeperframe.numerator = 1;
        parameters->parm.capture.timeperframe.denominator = device.fps;
        return 0;
    }
    case VIDIOC_S_CTRL: {
        struct v4l2_control *control = argument;
        if (control->id == FORCE_KEY_FRAME && device.keyframe_control) {
            device.keyframe_asked = 1;
            note("keyframe asked");
            return 0;
        }
        return fail(EINVAL);
    }
    case VIDIOC_G_STD:
    case VIDIOC_S_STD:
    case VIDIOC_ENUMSTD:
        return fail(ENOTTY); /* a camera has no TV standard */
    default:
        return answer_about_buffers(fd, request, argument);
    }
}
