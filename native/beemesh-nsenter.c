/*
 * beemesh-nsenter: open a tap device inside another network namespace and
 * hand its file descriptor back over a unix socket (SCM_RIGHTS).
 *
 * Why a C helper: setns(2) into a user namespace is refused for a
 * multithreaded process, and a .NET process always has several threads.
 * This program is single-threaded, does the namespace work, and passes the
 * tap fd to the parent, which keeps the only open copy.
 *
 * Commands (see usage() for the full syntax):
 *
 *   tap  join the user namespace (--userns PATH, else PID's; only when it
 *        differs from ours) and the network namespace of --pid PID or --netns PATH,
 *        create the tap there, optionally configure it, send the fd, exit 0.
 *
 *   run  run the command in its own user, mount, PID and network namespaces
 *        (our uid/gid mapped to 0, like `unshare -r`), with --hide DIR covered
 *        and locked; create and configure the tap, send the fd, wait for one
 *        "go" byte from the parent, then start the command under a tiny init.
 *        This process stays as a monitor: the command lives exactly as long
 *        as the control socket stays open (see "run" below).
 *
 *   sandbox  open the tap as tap does, then build slirp4netns's
 *        --enable-sandbox around PROGRAM and exec it (see "sandbox" below).
 *
 * Protocol on --socket PATH (a unix stream socket the parent listens on):
 * exactly one message from us, either the tap fd in SCM_RIGHTS with the text
 * "ok vnet=V offload=O\n", or no fd and "error <message>\n". In run mode the
 * parent then writes one byte when its stack is ready and keeps the socket
 * open while the command may run; EOF at any time means "give up": every
 * process of the command is killed and we exit non-zero.
 *
 * Configuration uses the classic ioctls (SIOCSIFHWADDR, SIOCSIFMTU,
 * SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFFLAGS, SIOCADDRT): one IPv4 address and
 * one default route is all we set, and the ioctls do that with far less code
 * than rtnetlink. IPv6 addresses come from router advertisements (SLAAC),
 * which the userland stack sends; we only make sure the kernel accepts them.
 *
 * Every failure prints one line on stderr, is sent as "error ..." when the
 * socket can be reached, and exits with status 1 (127 when execvp fails).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "beemesh-nsenter"
#define DEFAULT_TAP "tap0"
#define MIN_MTU 68    /* RFC 791: every IPv4 host must handle 68-byte datagrams */
#define MAX_MTU 65521 /* the same ceiling slirp4netns enforces */
#define MAX_KEEP 8    /* sandbox --keep and --keep-writable paths */
#define MAX_LISTEN 4  /* run --listen ports */

struct options {
    const char *command;     /* "tap" or "run" */
    const char *socket_path; /* --socket */
    pid_t pid;               /* --pid, 0 when absent */
    const char *netns_path;  /* --netns */
    const char *userns_path; /* --userns */
    const char *tap_name;    /* --tap, default tap0 */
    bool vnet_hdr;           /* --vnet-hdr */
    bool configure;          /* --configure (always on for run) */
    int mtu;                 /* --mtu, 0 when absent */
    bool have_address;
    struct in_addr address; /* --address A.B.C.D/PREFIX */
    struct in_addr netmask;
    bool have_gateway;
    struct in_addr gateway; /* --gateway */
    bool have_mac;
    unsigned char mac[6]; /* --mac */
    bool ipv6;            /* --ipv6 */
    const char *resolv_conf; /* run --resolv-conf FILE: shown to CMD as /etc/resolv.conf */
    const char *hide;        /* run --hide DIR: covered, read-only, in CMD's mount namespace */
    const char *hide_with;   /* run --hide-with DIR2: what covers --hide (else an empty tmpfs) */
    char **argv;          /* run: the command after "--" */
    /* sandbox: paths the new root keeps (bind-mounted at the same place) */
    const char *keep[MAX_KEEP];
    bool keep_writable[MAX_KEEP];
    int keep_count;
    /* run --listen PORT: TCP sockets listening on 127.0.0.1:PORT inside the command's network namespace */
    int listen_ports[MAX_LISTEN];
    int listen_count;
};

/* The control socket: set by connect_control(), used by fail() to report. */
static const char *control_path;
static int control_fd = -1;

/* Our uid before entering any namespace: the one the /dev/net/tun mode must allow. */
static uid_t outer_uid;

static void send_all(int fd, const char *text, size_t length);

/*
 * Report an error and exit 1. The socket is connected lazily here so that
 * errors found before the normal connect (bad arguments) still reach the
 * parent; MSG_NOSIGNAL keeps a vanished parent from killing us with SIGPIPE.
 */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    /* The protocol is line-based: a message must stay on one line. */
    for (char *p = message; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    fprintf(stderr, PROGRAM ": %s\n", message);

    if (control_fd < 0 && control_path != NULL) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        if (fd >= 0 && strlen(control_path) < sizeof(address.sun_path)) {
            memcpy(address.sun_path, control_path, strlen(control_path));
            if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0)
                control_fd = fd;
        }
        if (control_fd < 0 && fd >= 0)
            close(fd);
    }
    if (control_fd >= 0) {
        char line[sizeof(message) + 8];
        int length = snprintf(line, sizeof(line), "error %s\n", message);
        if (length > 0)
            send_all(control_fd, line, (size_t)length < sizeof(line) ? (size_t)length : sizeof(line) - 1);
    }
    exit(1);
}

/* Best effort: used only on the error path, so failures are ignored. */
static void send_all(int fd, const char *text, size_t length)
{
    while (length > 0) {
        ssize_t sent = send(fd, text, length, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return;
        text += sent;
        length -= (size_t)sent;
    }
}

static void usage(FILE *out)
{
    fputs("usage:\n"
          "  " PROGRAM " tap --socket PATH (--pid PID | --netns PATH) [--userns PATH]\n"
          "      [--tap NAME] [--vnet-hdr]\n"
          "      [--configure --mtu N --address A.B.C.D/PREFIX --gateway A.B.C.D\n"
          "       [--mac XX:XX:XX:XX:XX:XX] [--ipv6]]\n"
          "  " PROGRAM " run --socket PATH [--tap NAME] [--vnet-hdr] --mtu N\n"
          "      --address A.B.C.D/PREFIX --gateway A.B.C.D [--mac MAC] [--ipv6]\n"
          "      [--resolv-conf FILE] [--hide DIR [--hide-with DIR2]] [--listen PORT]... -- CMD [ARGS...]\n"
          "  " PROGRAM " sandbox (--pid PID | --netns PATH) [--userns PATH] [tap options as for tap]\n"
          "      [--keep PATH]... [--keep-writable PATH]... -- PROGRAM ARGV0 [ARGS...]\n"
          "\n"
          "Creates the tap device (default " DEFAULT_TAP ") inside the target network namespace and\n"
          "sends its fd over the unix socket PATH with the line \"ok vnet=V offload=O\".\n"
          "run --listen PORT: then one message per port, a TCP socket listening on\n"
          "127.0.0.1:PORT inside the command's network namespace with the line \"listen PORT\".\n",
          out);
}

/* ---- argument parsing ------------------------------------------------- */

static long parse_number(const char *text, long min, long max, const char *what)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        fail("%s must be a number from %ld to %ld, got '%s'", what, min, max, text);
    return value;
}

static struct in_addr parse_ipv4(const char *text, const char *what)
{
    struct in_addr address;
    if (inet_pton(AF_INET, text, &address) != 1)
        fail("%s must be an IPv4 address like 10.0.2.2, got '%s'", what, text);
    return address;
}

/* "10.0.2.100/24" -> address and netmask. */
static void parse_cidr(const char *text, struct options *o)
{
    char buffer[INET_ADDRSTRLEN + 4];
    const char *slash = strchr(text, '/');
    if (slash == NULL || (size_t)(slash - text) >= INET_ADDRSTRLEN)
        fail("--address must look like A.B.C.D/PREFIX, got '%s'", text);
    memcpy(buffer, text, (size_t)(slash - text));
    buffer[slash - text] = '\0';
    o->address = parse_ipv4(buffer, "--address");
    long prefix = parse_number(slash + 1, 1, 32, "--address prefix length");
    uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
    o->netmask.s_addr = htonl(mask);
    o->have_address = true;
}

/* Six hex bytes separated by ':' (the form slirp4netns --macaddress takes). */
static void parse_mac(const char *text, struct options *o)
{
    unsigned int bytes[6];
    char tail;
    if (strlen(text) != 17 ||
        sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1], &bytes[2], &bytes[3],
               &bytes[4], &bytes[5], &tail) != 6)
        fail("--mac must look like 02:00:00:00:00:01, got '%s'", text);
    if (bytes[0] & 1)
        fail("--mac %s is a multicast address; a device address must be unicast", text);
    for (int i = 0; i < 6; i++)
        o->mac[i] = (unsigned char)bytes[i];
    o->have_mac = true;
}

/* Mirrors the kernel's dev_valid_name(); the name is also used in a /proc path. */
static void check_tap_name(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length >= IFNAMSIZ)
        fail("--tap name must be 1 to %d characters, got '%s'", IFNAMSIZ - 1, name);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strpbrk(name, "/: \t\n") != NULL)
        fail("--tap name '%s' is not a valid interface name", name);
}

/* Accepts "--name value" and "--name=value". */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t length = strlen(name);
    const char *arg = argv[*i];
    if (arg[length] == '=')
        return arg + length + 1;
    if (*i + 1 >= argc)
        fail("%s needs a value", name);
    *i += 1;
    return argv[*i];
}

static bool is_option(const char *arg, const char *name)
{
    size_t length = strlen(name);
    return strncmp(arg, name, length) == 0 && (arg[length] == '\0' || arg[length] == '=');
}

static void parse_arguments(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->tap_name = DEFAULT_TAP;
    if (argc < 2)
        fail("missing command (tap or run); see --help");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        exit(0);
    }
    o->command = argv[1];
    if (strcmp(o->command, "tap") != 0 && strcmp(o->command, "run") != 0 && strcmp(o->command, "sandbox") != 0)
        fail("unknown command '%s' (expected tap, run or sandbox); see --help", o->command);

    /* Find --socket first, so every later parse error can be reported on it. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (is_option(argv[i], "--socket")) {
            int j = i;
            o->socket_path = option_value(argc, argv, &j, "--socket");
            control_path = o->socket_path;
        }
    }

    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            o->argv = &argv[i + 1];
            break;
        } else if (is_option(arg, "--socket")) {
            option_value(argc, argv, &i, "--socket");
        } else if (is_option(arg, "--pid")) {
            o->pid = (pid_t)parse_number(option_value(argc, argv, &i, "--pid"), 1, INT_MAX, "--pid");
        } else if (is_option(arg, "--netns")) {
            o->netns_path = option_value(argc, argv, &i, "--netns");
        } else if (is_option(arg, "--userns")) {
            o->userns_path = option_value(argc, argv, &i, "--userns");
        } else if (is_option(arg, "--tap")) {
            o->tap_name = option_value(argc, argv, &i, "--tap");
        } else if (strcmp(arg, "--vnet-hdr") == 0) {
            o->vnet_hdr = true;
        } else if (strcmp(arg, "--configure") == 0) {
            o->configure = true;
        } else if (is_option(arg, "--mtu")) {
            o->mtu = (int)parse_number(option_value(argc, argv, &i, "--mtu"), MIN_MTU, MAX_MTU, "--mtu");
        } else if (is_option(arg, "--address")) {
            parse_cidr(option_value(argc, argv, &i, "--address"), o);
        } else if (is_option(arg, "--gateway")) {
            o->gateway = parse_ipv4(option_value(argc, argv, &i, "--gateway"), "--gateway");
            o->have_gateway = true;
        } else if (is_option(arg, "--mac")) {
            parse_mac(option_value(argc, argv, &i, "--mac"), o);
        } else if (strcmp(arg, "--ipv6") == 0) {
            o->ipv6 = true;
        } else if (is_option(arg, "--resolv-conf")) {
            o->resolv_conf = option_value(argc, argv, &i, "--resolv-conf");
        } else if (is_option(arg, "--hide")) {
            o->hide = option_value(argc, argv, &i, "--hide");
            if (o->hide[0] != '/')
                fail("--hide needs an absolute path, got '%s'", o->hide);
        } else if (is_option(arg, "--hide-with")) {
            o->hide_with = option_value(argc, argv, &i, "--hide-with");
            if (o->hide_with[0] != '/')
                fail("--hide-with needs an absolute path, got '%s'", o->hide_with);
        } else if (is_option(arg, "--listen")) {
            int port = (int)parse_number(option_value(argc, argv, &i, "--listen"), 1, 65535, "--listen");
            if (o->listen_count == MAX_LISTEN)
                fail("at most %d --listen ports", MAX_LISTEN);
            o->listen_ports[o->listen_count++] = port;
        } else if (is_option(arg, "--keep") || is_option(arg, "--keep-writable")) {
            bool writable = is_option(arg, "--keep-writable");
            const char *path = option_value(argc, argv, &i, writable ? "--keep-writable" : "--keep");
            if (o->keep_count == MAX_KEEP)
                fail("at most %d --keep and --keep-writable paths", MAX_KEEP);
            if (path[0] != '/')
                fail("--keep needs an absolute path, got '%s'", path);
            o->keep[o->keep_count] = path;
            o->keep_writable[o->keep_count] = writable;
            o->keep_count++;
        } else {
            fail("unknown option '%s'; see --help", arg);
        }
    }

    /* Cross-checks. */
    bool sandbox = strcmp(o->command, "sandbox") == 0;
    if (sandbox) {
        /* sandbox passes the tap over an internal socket pair, never --socket. */
        if (o->socket_path != NULL)
            fail("sandbox takes no --socket");
        if ((o->pid != 0) == (o->netns_path != NULL))
            fail("sandbox needs exactly one of --pid PID or --netns PATH");
        if (o->argv == NULL || o->argv[0] == NULL || o->argv[1] == NULL)
            fail("sandbox needs PROGRAM and ARGV0 after '--'");
        o->socket_path = "";
    } else if (o->keep_count > 0) {
        fail("--keep and --keep-writable belong to sandbox");
    }
    if (o->socket_path == NULL)
        fail("--socket PATH is required");
    check_tap_name(o->tap_name);
    bool run = strcmp(o->command, "run") == 0;
    if (run) {
        if (o->pid != 0 || o->netns_path != NULL || o->userns_path != NULL)
            fail("run creates its own namespaces; --pid, --netns and --userns belong to tap");
        if (o->argv == NULL || o->argv[0] == NULL)
            fail("run needs a command after '--'");
        if (o->hide_with != NULL && o->hide == NULL)
            fail("--hide-with needs --hide");
        o->configure = true;
    } else if (o->hide != NULL || o->hide_with != NULL || o->resolv_conf != NULL || o->listen_count > 0) {
        fail("--hide, --hide-with, --resolv-conf and --listen belong to run");
    } else if (!sandbox) {
        if ((o->pid != 0) == (o->netns_path != NULL))
            fail("tap needs exactly one of --pid PID or --netns PATH");
        if (o->argv != NULL)
            fail("tap takes no command after '--'");
    }
    if (o->configure) {
        if (o->mtu == 0 || !o->have_address || !o->have_gateway)
            fail("configuring the tap needs --mtu, --address and --gateway");
        if ((o->address.s_addr & o->netmask.s_addr) != (o->gateway.s_addr & o->netmask.s_addr))
            fail("--gateway must be inside the --address subnet");
    } else if (o->mtu != 0 || o->have_address || o->have_gateway || o->have_mac || o->ipv6) {
        fail("--mtu, --address, --gateway, --mac and --ipv6 need --configure");
    }
}

/* ---- control socket --------------------------------------------------- */

static void connect_control(const char *path)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(address.sun_path)) {
        control_path = NULL; /* fail() must not try again */
        fail("--socket path is longer than %zu bytes", sizeof(address.sun_path) - 1);
    }
    memcpy(address.sun_path, path, strlen(path));
    /* CLOEXEC: the command started by run must not inherit the socket. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        control_path = NULL;
        fail("cannot create a unix socket: %s", strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int error = errno;
        close(fd);
        control_path = NULL;
        fail("cannot connect to --socket %s: %s", path, strerror(error));
    }
    control_fd = fd;
}

/* One sendmsg carries both the fd and its line, so they cannot be separated
 * (the receiver's recvmsg also stops after a message that carried fds). */
static void send_fd(int fd, const char *line, int length, const char *what)
{
    struct iovec iov = { .iov_base = (void *)line, .iov_len = (size_t)length };
    union {
        char bytes[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align; /* CMSG_* need a cmsghdr-aligned buffer */
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.bytes,
        .msg_controllen = sizeof(control.bytes),
    };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));

    ssize_t sent;
    do {
        sent = sendmsg(control_fd, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0)
        fail("cannot send the %s fd: %s", what, strerror(errno));
    if (sent != length)
        fail("short write sending the %s fd (%zd of %d bytes)", what, sent, length);
}

static void send_tap(int tap_fd, bool vnet, bool offload)
{
    char line[32];
    int length = snprintf(line, sizeof(line), "ok vnet=%d offload=%d\n", vnet ? 1 : 0, offload ? 1 : 0);
    send_fd(tap_fd, line, length, "tap");
}

/*
 * run --listen: a TCP socket listening on 127.0.0.1:PORT in the command's
 * network namespace (whose loopback configure() brought up), sent to the
 * parent and closed here. The parent serves on it; the command can connect
 * to the port but never bind it, since the socket holds it from before the
 * command starts.
 */
static void send_listeners(const struct options *o)
{
    for (int i = 0; i < o->listen_count; i++) {
        int port = o->listen_ports[i];
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            fail("cannot create a listening socket: %s", strerror(errno));
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
            fail("cannot set SO_REUSEADDR: %s", strerror(errno));
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0)
            fail("cannot bind 127.0.0.1:%d: %s", port, strerror(errno));
        if (listen(fd, SOMAXCONN) < 0)
            fail("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
        char line[32];
        int length = snprintf(line, sizeof(line), "listen %d\n", port);
        send_fd(fd, line, length, "listening socket");
        if (close(fd) < 0)
            fail("close(listening socket): %s", strerror(errno));
    }
}

/* ---- namespaces ------------------------------------------------------- */

static void join_namespaces(const struct options *o)
{
    char net_buffer[64], user_buffer[64];
    int userns_error = 0;
    const char *net_path = o->netns_path;
    const char *user_path = o->userns_path;
    if (o->pid != 0) {
        snprintf(net_buffer, sizeof(net_buffer), "/proc/%d/ns/net", (int)o->pid);
        net_path = net_buffer;
        /* --userns with --pid names the user namespace to join instead of
         * the target's own, as slirp4netns --userns-path does. */
        if (user_path == NULL) {
            snprintf(user_buffer, sizeof(user_buffer), "/proc/%d/ns/user", (int)o->pid);
            user_path = user_buffer;
        }
    }

    /* Open both before joining either: inside the target user namespace
     * the target's /proc entries may no longer be ours to open. */
    int net_fd = open(net_path, O_RDONLY | O_CLOEXEC);
    if (net_fd < 0) {
        if (errno == ENOENT && o->pid != 0)
            fail("no process with pid %d", (int)o->pid);
        fail("cannot open network namespace %s: %s", net_path, strerror(errno));
    }
    if (user_path != NULL) {
        int user_fd = open(user_path, O_RDONLY | O_CLOEXEC);
        if (user_fd < 0) {
            if (errno == ENOENT && o->pid != 0)
                fail("no process with pid %d", (int)o->pid);
            fail("cannot open user namespace %s: %s", user_path, strerror(errno));
        }
        /* setns() into the user namespace we are already in fails with
         * EINVAL, so join only when the namespace inode differs. */
        struct stat ours, theirs;
        if (stat("/proc/self/ns/user", &ours) < 0)
            fail("cannot stat /proc/self/ns/user: %s", strerror(errno));
        if (fstat(user_fd, &theirs) < 0)
            fail("cannot stat user namespace %s: %s", user_path, strerror(errno));
        if (ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino) {
            /* A user namespace we cannot join is not fatal by itself: slirp4netns
             * goes on to the network namespace, which a privileged caller may
             * still enter. Its failure then reports both reasons. */
            if (setns(user_fd, CLONE_NEWUSER) < 0)
                userns_error = errno;
        }
        if (close(user_fd) < 0)
            fail("close(user namespace): %s", strerror(errno));
    }
    if (setns(net_fd, CLONE_NEWNET) < 0) {
        int error = errno;
        if (userns_error != 0)
            fail("cannot join user namespace %s (%s), and then network namespace %s: %s", user_path,
                 strerror(userns_error), net_path, strerror(error));
        if (error == EINVAL)
            fail("%s is not a network namespace", net_path);
        fail("cannot join network namespace %s: %s%s", net_path, strerror(error),
             error == EPERM && user_path == NULL ? " (pass --userns with the namespace's owning user namespace)" : "");
    }
    if (close(net_fd) < 0)
        fail("close(network namespace): %s", strerror(errno));
}

static void write_file_at(int directory, const char *path, const char *text)
{
    int fd = openat(directory, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open %s: %s", path, strerror(errno));
    size_t length = strlen(text);
    ssize_t written = write(fd, text, length);
    if (written < 0)
        fail("cannot write '%s' to %s: %s", text, path, strerror(errno));
    if ((size_t)written != length)
        fail("short write to %s", path);
    if (close(fd) < 0)
        fail("cannot write '%s' to %s: %s", text, path, strerror(errno));
}

static void write_file(const char *path, const char *text)
{
    write_file_at(AT_FDCWD, path, text);
}

/*
 * run: /proc/sys/net opened before /proc/sys turns read-only for the command
 * (see protect_kernel_settings), so the tap's IPv6 settings can still be made
 * through the writable mount underneath. Net sysctls resolve to the network
 * namespace of the process that looks them up, so names opened through it
 * after the unshare are the new namespace's. Closed before the command runs.
 */
static int sysctl_net_fd = -1;

/* Maps uid and gid 0 of the user namespace we just entered to our previous
 * ids; the only mapping an unprivileged creator may write. */
static void map_root(uid_t uid, gid_t gid)
{
    char map[64];
    /* setgroups must be denied before an unprivileged process may write gid_map. */
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    write_file("/proc/self/gid_map", map);
}

/*
 * run, first stage (the monitor): a new user namespace that maps only our own
 * ids to root, as `unshare -r` does (root and unprivileged users alike), a
 * private mount namespace, and a PID namespace our next child is PID 1 of.
 */
static void unshare_outer_namespaces(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) < 0) {
        int error = errno;
        if (error == EPERM || error == ENOSPC || error == EUSERS)
            fail("cannot create a user namespace: %s (check user.max_user_namespaces and kernel.unprivileged_userns_clone)",
                 strerror(error));
        fail("cannot create user, mount and PID namespaces: %s", strerror(error));
    }
    map_root(uid, gid);
    /* Keep our mounts from propagating back to the host's namespace. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail("cannot make / private in the new mount namespace: %s", strerror(errno));
}

/*
 * run --resolv-conf FILE: the command shares the host's file system, whose
 * /etc/resolv.conf names the host's resolver, unreachable from the new network
 * namespace. FILE is bind-mounted over it, so names go to the stack's DNS
 * address. mount(2) follows a symlinked /etc/resolv.conf to the file it names.
 */
static void mount_resolv_conf(const char *file)
{
    if (mount(file, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
        fail("cannot bind-mount %s over /etc/resolv.conf: %s", file, strerror(errno));
}

/*
 * run --hide DIR [--hide-with DIR2]: DIR is covered by DIR2 (bound) or by an
 * empty tmpfs, read-only, nosuid, nodev. The source is resolved before the
 * cover takes effect, so DIR2 may lie inside DIR.
 */
static void mount_hide(const char *dir, const char *with)
{
    if (with != NULL) {
        if (mount(with, dir, NULL, MS_BIND, NULL) < 0)
            fail("cannot cover %s with %s: %s", dir, with, strerror(errno));
    } else if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0755") < 0) {
        fail("cannot cover %s with an empty tmpfs: %s", dir, strerror(errno));
    }
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail("cannot make the cover of %s read-only: %s", dir, strerror(errno));
}

/*
 * The command's root is the caller's uid (root when root ran us), and the
 * kernel grants that uid the owner's rights on /proc/sys and on sysfs and
 * cgroup files whatever user namespace it is in: kernel.core_pattern alone
 * would run a program of its choice as the node's root. So in the command's
 * view /proc/sys, /proc/sysrq-trigger and /sys with everything under it are
 * read-only (locked, like the covers). Failing to do so fails the run.
 */
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define READ_ONLY_ATTR 0x00000001 /* MOUNT_ATTR_RDONLY */

struct read_only_attr {
    unsigned long long attr_set, attr_clr, propagation, userns_fd;
};

static void make_read_only(const char *path, bool bind_first)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return; /* not in this kernel (e.g. no magic SysRq): nothing to protect */
        fail("cannot stat %s: %s", path, strerror(errno));
    }
    if (bind_first && mount(path, path, NULL, MS_BIND, NULL) < 0)
        fail("cannot bind %s over itself: %s", path, strerror(errno));
    struct read_only_attr attr = { .attr_set = READ_ONLY_ATTR };
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) < 0)
        fail("cannot make %s read-only for the command: %s", path, strerror(errno));
}

static void protect_kernel_settings(void)
{
    make_read_only("/proc/sys", true);
    make_read_only("/proc/sysrq-trigger", true);
    make_read_only("/sys", false);
}

/*
 * The working directory we inherited is a reference to the directory itself,
 * not to its name: a cover mounted over it (or over one of its parents) does
 * not hide it. Started from inside the hidden directory, the command would
 * otherwise read and write the agent's state through "." and "..". Resolve
 * the name again so the covers apply; a name the covers hid starts the
 * command in "/".
 */
static void reenter_working_directory(void)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) != NULL && chdir(cwd) == 0)
        return;
    fprintf(stderr, PROGRAM ": the working directory is hidden in the command's namespace; starting in /\n");
    if (chdir("/") < 0)
        fail("cannot change the working directory to /: %s", strerror(errno));
}

/* A /proc that shows our PID namespace only (the host's processes are not in it). */
static void mount_proc(void)
{
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail("cannot mount a fresh /proc: %s", strerror(errno));
}

/*
 * run, second stage (PID 1 of the new PID namespace): a nested user namespace
 * (uid 0 mapped to our uid 0, itself the caller's uid), a mount namespace and
 * the network namespace for the tap. Mounts copied into a mount namespace of a
 * less privileged user namespace are locked: the command, root in its own
 * namespace, cannot unmount the covers nor make them writable.
 */
static void unshare_inner_namespaces(void)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) < 0)
        fail("cannot create the command's user, mount and network namespaces: %s", strerror(errno));
    map_root(0, 0);
}

/* ---- tap device ------------------------------------------------------- */

static int open_tap(const struct options *o, bool *offload)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        if (error == ENOENT || error == ENODEV || error == ENXIO)
            fail("cannot open /dev/net/tun: %s (load the tun module, or create the node: mknod /dev/net/tun c 10 200)",
                 strerror(error));
        if (error == EACCES || error == EPERM)
            fail("cannot open /dev/net/tun: %s (uid %u needs read and write access; the device is normally mode 0666)",
                 strerror(error), (unsigned)outer_uid);
        fail("cannot open /dev/net/tun: %s", strerror(error));
    }

    struct ifreq request;
    memset(&request, 0, sizeof(request));
    /* IFF_NO_PI: frames without the 4-byte packet-info prefix.
     * IFF_VNET_HDR: every frame carries a struct virtio_net_hdr (10 bytes). */
    request.ifr_flags = IFF_TAP | IFF_NO_PI | (o->vnet_hdr ? IFF_VNET_HDR : 0);
    memcpy(request.ifr_name, o->tap_name, strlen(o->tap_name));
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int error = errno;
        if (error == EBUSY)
            fail("cannot create tap device %s: a device with that name is already in use", o->tap_name);
        if (error == EPERM)
            fail("cannot create tap device %s: %s (CAP_NET_ADMIN in the namespace's owner is needed)",
                 o->tap_name, strerror(error));
        fail("cannot create tap device %s (TUNSETIFF): %s", o->tap_name, strerror(error));
    }

    *offload = false;
    if (o->vnet_hdr) {
        /* Checksum offload plus TSO lets the guest hand over 64 KB segments.
         * A kernel that refuses keeps the vnet header; offload=0 says so. */
        unsigned long features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        *offload = ioctl(fd, TUNSETOFFLOAD, features) == 0;
    }
    return fd;
}

static void set_up(int sock, const char *name)
{
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    memcpy(request.ifr_name, name, strlen(name));
    if (ioctl(sock, SIOCGIFFLAGS, &request) < 0)
        fail("cannot read the flags of %s: %s", name, strerror(errno));
    request.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &request) < 0)
        fail("cannot bring %s up: %s", name, strerror(errno));
}

static void set_ipv4(int sock, const char *name, unsigned long request_code, struct in_addr value,
                     const char *what)
{
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    memcpy(request.ifr_name, name, strlen(name));
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr = value };
    memcpy(&request.ifr_addr, &address, sizeof(address));
    if (ioctl(sock, request_code, &request) < 0)
        fail("cannot set the %s of %s: %s", what, name, strerror(errno));
}

static void configure(const struct options *o)
{
    const char *name = o->tap_name;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        fail("cannot create a configuration socket: %s", strerror(errno));

    struct ifreq request;
    /* MAC and MTU before the link goes up: the IPv6 link-local address is
     * derived from the MAC when the device comes up. */
    if (o->have_mac) {
        memset(&request, 0, sizeof(request));
        memcpy(request.ifr_name, name, strlen(name));
        request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
        memcpy(request.ifr_hwaddr.sa_data, o->mac, sizeof(o->mac));
        if (ioctl(sock, SIOCSIFHWADDR, &request) < 0)
            fail("cannot set the MAC address of %s: %s", name, strerror(errno));
    }
    memset(&request, 0, sizeof(request));
    memcpy(request.ifr_name, name, strlen(name));
    request.ifr_mtu = o->mtu;
    if (ioctl(sock, SIOCSIFMTU, &request) < 0)
        fail("cannot set MTU %d on %s: %s", o->mtu, name, strerror(errno));

    if (o->ipv6) {
        /* The guest's IPv6 address comes from our router advertisements.
         * accept_ra=2 accepts them even if forwarding is turned on in the
         * namespace (with 1 the kernel ignores RAs while forwarding). Set
         * before link-up, because the kernel solicits routers at link-up
         * only when it will accept the answer. */
        char path[96];
        if (access("/proc/sys/net/ipv6", F_OK) < 0)
            fail("--ipv6: IPv6 is disabled in this kernel (/proc/sys/net/ipv6 is missing)");
        int net = sysctl_net_fd >= 0 ? sysctl_net_fd : AT_FDCWD;
        const char *prefix = sysctl_net_fd >= 0 ? "" : "/proc/sys/net/";
        snprintf(path, sizeof(path), "%sipv6/conf/%s/disable_ipv6", prefix, name);
        write_file_at(net, path, "0");
        snprintf(path, sizeof(path), "%sipv6/conf/%s/accept_ra", prefix, name);
        write_file_at(net, path, "2");
    }

    set_ipv4(sock, name, SIOCSIFADDR, o->address, "IPv4 address");
    set_ipv4(sock, name, SIOCSIFNETMASK, o->netmask, "netmask");
    set_up(sock, name);
    set_up(sock, "lo");

    /* Default route: 0.0.0.0/0 via the gateway on our device. It needs the
     * device up, since the gateway must be reachable through its subnet route. */
    struct rtentry route;
    memset(&route, 0, sizeof(route));
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = INADDR_ANY };
    struct sockaddr_in gateway = { .sin_family = AF_INET, .sin_addr = o->gateway };
    memcpy(&route.rt_dst, &any, sizeof(any));
    memcpy(&route.rt_genmask, &any, sizeof(any));
    memcpy(&route.rt_gateway, &gateway, sizeof(gateway));
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    route.rt_dev = (char *)name;
    if (ioctl(sock, SIOCADDRT, &route) < 0) {
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &o->gateway, text, sizeof(text));
        fail("cannot add the default route via %s: %s", text, strerror(errno));
    }
    if (close(sock) < 0)
        fail("close(configuration socket): %s", strerror(errno));
}

/* ---- sandbox ---------------------------------------------------------- */

/*
 * sandbox: what slirp4netns --enable-sandbox does, split around an exec
 * because the stack is a .NET program, multithreaded from its first
 * instruction, and unshare(CLONE_NEWNS) and capset(2) act on one thread only:
 *
 *   1. a child opens (and optionally configures) the tap in the target
 *      namespaces and passes the fd back, exactly as the tap command does;
 *   2. without root, join the target's user namespace and become its root
 *      (slirp4netns does the same before create_sandbox);
 *   3. unshare a mount namespace and open the --keep paths there;
 *   4. fork the pivot helper, which keeps every capability and waits;
 *   5. drop every capability but CAP_NET_BIND_SERVICE (bounding set too),
 *      set no_new_privs, and exec PROGRAM with the tap fd and
 *      the pivot socket inherited, described in BEEMESH_SLIRP_SANDBOX as
 *      "tap=FD vnet=V offload=O pivot=FD".
 *
 * PROGRAM sets itself up (binds its API socket, reads resolv.conf) while
 * the old root is still visible, then writes one byte on the pivot socket.
 * The helper then builds the new root, an empty tmpfs at SANDBOX_ROOT
 * holding only the --keep paths, bound read-only (--keep-writable ones
 * read-write), nosuid, nodev, noexec (built only now, since the tmpfs hides
 * what PROGRAM may still have needed under SANDBOX_ROOT, such as its API
 * socket's directory), and pivot_roots the mount namespace into it: the
 * kernel moves the root and working directory of every process whose root
 * was the old one, so PROGRAM (all its threads) ends up inside; the old
 * root is detached and the tmpfs made read-only. The helper answers "ok\n"
 * (or "error <message>\n") and exits; PROGRAM then chdirs to "/", so its
 * working directory holds nothing of the old tree either.
 */

#define SANDBOX_ROOT "/tmp" /* where the tmpfs is built, as slirp4netns does */
#define SANDBOX_ENV "BEEMESH_SLIRP_SANDBOX"

/* Receives the tap fd and its "ok vnet=V offload=O" line from the tap child. */
static int receive_tap(int sock, bool *vnet, bool *offload)
{
    char line[512];
    struct iovec iov = { .iov_base = line, .iov_len = sizeof(line) - 1 };
    union {
        char bytes[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.bytes,
        .msg_controllen = sizeof(control.bytes),
    };
    ssize_t got;
    do {
        got = recvmsg(sock, &message, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        fail("cannot receive the tap fd: %s", strerror(errno));
    line[got] = '\0';
    int fd = -1;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&message); h != NULL; h = CMSG_NXTHDR(&message, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(&fd, CMSG_DATA(h), sizeof(int));
    }
    int v = 0, f = 0;
    if (fd < 0 || sscanf(line, "ok vnet=%d offload=%d", &v, &f) != 2) {
        /* The child already printed its one error line. */
        exit(1);
    }
    *vnet = v != 0;
    *offload = f != 0;
    return fd;
}

/* Step 1: the tap, opened by a child so that we stay in our own namespaces. */
static int sandbox_open_tap(const struct options *o, bool *vnet, bool *offload)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        fail("cannot create a socket pair: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        fail("cannot fork: %s", strerror(errno));
    if (child == 0) {
        close(pair[0]);
        control_fd = pair[1]; /* fail() reports here */
        join_namespaces(o);
        bool tap_offload = false;
        int tap_fd = open_tap(o, &tap_offload);
        if (o->configure)
            configure(o);
        send_tap(tap_fd, o->vnet_hdr, tap_offload);
        _exit(0);
    }
    close(pair[1]);
    int fd = receive_tap(pair[0], vnet, offload);
    close(pair[0]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return fd;
}

/* Step 2: root of the target's user namespace, when we are not root already. */
static void sandbox_become_root(const struct options *o)
{
    if (geteuid() == 0)
        return;
    char buffer[64];
    const char *path = o->userns_path;
    if (path == NULL && o->pid != 0) {
        snprintf(buffer, sizeof(buffer), "/proc/%d/ns/user", (int)o->pid);
        path = buffer;
    }
    if (path == NULL)
        fail("--enable-sandbox without root needs the target's user namespace (--userns-path)");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open user namespace %s: %s", path, strerror(errno));
    if (setns(fd, CLONE_NEWUSER) < 0)
        fail("cannot join user namespace %s: %s", path, strerror(errno));
    close(fd);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        fail("cannot become root in user namespace %s: %s", path, strerror(errno));
}

/* What the new root keeps: opened in our mount namespace before the tmpfs
 * can hide it (a path under /tmp), bound later from /proc/self/fd/N. */
struct kept {
    int fd;
    bool is_dir;
};

/* Step 3: a private mount namespace, and the paths to keep held open. */
static void sandbox_enter_mount_namespace(const struct options *o, struct kept *kept)
{
    if (unshare(CLONE_NEWNS) < 0)
        fail("cannot unshare a mount namespace: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail("cannot make / private: %s", strerror(errno));
    for (int i = 0; i < o->keep_count; i++) {
        /* CLOEXEC: the program must not inherit them; the pivot helper does, by fork. */
        kept[i].fd = open(o->keep[i], O_PATH | O_CLOEXEC);
        if (kept[i].fd < 0)
            fail("cannot open %s to keep in the sandbox: %s", o->keep[i], strerror(errno));
        struct stat st;
        if (fstat(kept[i].fd, &st) < 0)
            fail("cannot stat %s: %s", o->keep[i], strerror(errno));
        kept[i].is_dir = S_ISDIR(st.st_mode);
    }
}

__attribute__((noreturn, format(printf, 2, 3))) static void pivot_fail(int sock, const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    if (length < 0)
        _exit(1);
    send_all(sock, "error ", 6);
    send_all(sock, message, strlen(message));
    send_all(sock, "\n", 1);
    _exit(1);
}

/* mkdir -p for the parents of a path inside the new root (our own tmpfs). */
static bool make_parents(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        bool ok = mkdir(path, 0755) == 0 || errno == EEXIST;
        *p = '/';
        if (!ok)
            return false;
    }
    return true;
}

/* The new root: an empty tmpfs at SANDBOX_ROOT with the kept paths bound in
 * at their own places, read-only unless --keep-writable, nosuid, nodev,
 * noexec. Built only once the program is set up: the tmpfs hides SANDBOX_ROOT. */
static void build_root(int sock, const struct options *o, const struct kept *kept)
{
    if (mount("tmpfs", SANDBOX_ROOT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0)
        pivot_fail(sock, "cannot mount a tmpfs on " SANDBOX_ROOT ": %s", strerror(errno));
    if (mkdir(SANDBOX_ROOT "/old", 0700) < 0)
        pivot_fail(sock, "cannot create " SANDBOX_ROOT "/old: %s", strerror(errno));
    for (int i = 0; i < o->keep_count; i++) {
        char target[PATH_MAX];
        char source[64];
        if (snprintf(target, sizeof(target), SANDBOX_ROOT "%s", o->keep[i]) >= (int)sizeof(target))
            pivot_fail(sock, "path too long: %s", o->keep[i]);
        if (!make_parents(target))
            pivot_fail(sock, "cannot create the parents of %s: %s", target, strerror(errno));
        if (kept[i].is_dir) {
            if (mkdir(target, 0755) < 0 && errno != EEXIST)
                pivot_fail(sock, "cannot create %s: %s", target, strerror(errno));
        } else {
            int f = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (f < 0)
                pivot_fail(sock, "cannot create %s: %s", target, strerror(errno));
            close(f);
        }
        snprintf(source, sizeof(source), "/proc/self/fd/%d", kept[i].fd);
        if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
            pivot_fail(sock, "cannot bind %s into the sandbox: %s", o->keep[i], strerror(errno));
        unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        if (!o->keep_writable[i])
            flags |= MS_RDONLY;
        if (mount(NULL, target, NULL, flags, NULL) < 0)
            pivot_fail(sock, "cannot restrict the sandbox's %s: %s", o->keep[i], strerror(errno));
        close(kept[i].fd);
    }
}

/* The pivot helper's body: wait for the word, build the root, move the
 * namespace's root into it, answer. */
static void run_pivot_helper(int sock, const struct options *o, const struct kept *kept)
{
    char go;
    ssize_t got;
    do {
        got = read(sock, &go, 1);
    } while (got < 0 && errno == EINTR);
    if (got <= 0)
        _exit(0); /* the program is gone: nothing to move */
    build_root(sock, o, kept);
    if (chdir(SANDBOX_ROOT) < 0)
        pivot_fail(sock, "cannot chdir to " SANDBOX_ROOT ": %s", strerror(errno));
    if (syscall(SYS_pivot_root, ".", "old") < 0)
        pivot_fail(sock, "cannot pivot_root to " SANDBOX_ROOT ": %s", strerror(errno));
    if (chdir("/") < 0)
        pivot_fail(sock, "cannot chdir to the new root: %s", strerror(errno));
    if (umount2("/old", MNT_DETACH) < 0)
        pivot_fail(sock, "cannot detach the old root: %s", strerror(errno));
    if (rmdir("/old") < 0)
        pivot_fail(sock, "cannot remove /old: %s", strerror(errno));
    /* Read-only is a nicety slirp4netns also tolerates failing (its #163). */
    mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    send_all(sock, "ok\n", 3);
    _exit(0);
}

/* Step 4: the helper is a grandchild, so the program never has to reap it. */
static int sandbox_start_pivot_helper(int tap_fd, const struct options *o, const struct kept *kept)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        fail("cannot create a socket pair: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        fail("cannot fork: %s", strerror(errno));
    if (child == 0) {
        pid_t helper = fork();
        if (helper < 0)
            _exit(1);
        if (helper > 0)
            _exit(0);
        close(pair[0]);
        close(tap_fd);
        run_pivot_helper(pair[1], o, kept);
    }
    close(pair[1]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("cannot start the sandbox's pivot helper");
    return pair[0];
}

/* Step 5: only CAP_NET_BIND_SERVICE survives, in every set, across exec. */
static void drop_capabilities(void)
{
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        fail("cannot clear the ambient capabilities: %s", strerror(errno));
    for (int cap = 0;; cap++) {
        if (cap == CAP_NET_BIND_SERVICE)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the last capability this kernel knows */
            fail("cannot drop capability %d from the bounding set: %s", cap, strerror(errno));
        }
    }
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    data[0].effective = data[0].permitted = data[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
    if (syscall(SYS_capset, &header, data) < 0)
        fail("cannot drop capabilities: %s", strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("cannot set no_new_privs: %s", strerror(errno));
}

static int sandbox_main(struct options *o)
{
    bool vnet = false, offload = false;
    int tap_fd = sandbox_open_tap(o, &vnet, &offload);
    sandbox_become_root(o);
    struct kept kept[MAX_KEEP];
    sandbox_enter_mount_namespace(o, kept);
    int pivot_fd = sandbox_start_pivot_helper(tap_fd, o, kept);
    for (int i = 0; i < o->keep_count; i++)
        close(kept[i].fd);
    drop_capabilities();

    /* Both fds must survive the exec. */
    if (fcntl(tap_fd, F_SETFD, 0) < 0 || fcntl(pivot_fd, F_SETFD, 0) < 0)
        fail("cannot clear close-on-exec: %s", strerror(errno));
    char value[96];
    snprintf(value, sizeof(value), "tap=%d vnet=%d offload=%d pivot=%d", tap_fd, vnet ? 1 : 0, offload ? 1 : 0,
             pivot_fd);
    if (setenv(SANDBOX_ENV, value, 1) < 0)
        fail("cannot set " SANDBOX_ENV ": %s", strerror(errno));
    execv(o->argv[0], &o->argv[1]);
    fail("cannot run %s: %s", o->argv[0], strerror(errno));
}

static void wait_for_go(void)
{
    char go;
    ssize_t got;
    do {
        got = read(control_fd, &go, 1);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        fail("waiting for the start signal: %s", strerror(errno));
    if (got == 0)
        fail("the parent closed the socket before sending the start signal");
}

/* ---- run ------------------------------------------------------------- */

/*
 * run: the process tree, from the caller's point of view
 *
 *   monitor (this process, the one the caller started): new user + mount +
 *     PID namespaces; stays outside the PID namespace. Forwards TERM, HUP,
 *     INT, QUIT, USR1 and USR2 to init, and exits with init's status. When the
 *     control socket closes (the caller exited, was killed, or gave up) it
 *     SIGKILLs init, and with it every process of the PID namespace.
 *   init (PID 1 of the new PID namespace): PR_SET_PDEATHSIG(SIGKILL) plus a
 *     pipe from the monitor, so it never outlives the monitor; mounts the
 *     covers, /etc/resolv.conf and a fresh /proc; enters the nested user,
 *     mount and network namespaces; creates and configures the tap, sends its
 *     fd, waits for the go byte; forks the command, forwards the same signals
 *     to it, reaps every orphan, and exits with the command's status (128 +
 *     signal when it was killed). Its exit ends every other process in the
 *     namespace.
 *   command: execvp'd with the caller's environment and a clean signal state.
 */

static const int forwarded_signals[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2 };

/* A signalfd for the forwarded signals and SIGCHLD, which are blocked. */
static int block_signals(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
        sigaddset(set, forwarded_signals[i]);
    sigaddset(set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, set, NULL) < 0)
        fail("cannot block signals: %s", strerror(errno));
    int fd = signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        fail("cannot create a signalfd: %s", strerror(errno));
    return fd;
}

static int exit_status_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

static void poll_forever(struct pollfd *fds, nfds_t count)
{
    while (poll(fds, count, -1) < 0) {
        if (errno != EINTR)
            fail("poll: %s", strerror(errno));
    }
}

/*
 * A signal the kernel sent (SI_KERNEL), such as ^C or a hangup from the
 * terminal, went to the whole foreground process group, the command included:
 * forwarding it too would deliver it twice.
 */
static bool from_terminal(const struct signalfd_siginfo *info)
{
    return info->ssi_code == SI_KERNEL;
}

/* The command: a fresh signal state (the mask survives exec), then exec. */
__attribute__((noreturn)) static void exec_command(const struct options *o, const sigset_t *blocked)
{
    for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
        signal(forwarded_signals[i], SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, blocked, NULL);
    execvp(o->argv[0], o->argv);
    fprintf(stderr, PROGRAM ": cannot run %s: %s\n", o->argv[0], strerror(errno));
    _exit(127);
}

/* PID 1: set up, start the command, then serve as its init until it exits. */
__attribute__((noreturn)) static void run_init(const struct options *o, int death_pipe)
{
    /* The monitor may have died before prctl took effect: the pipe says so. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        fail("cannot set the parent-death signal: %s", strerror(errno));
    struct pollfd parent = { .fd = death_pipe, .events = POLLIN };
    if (poll(&parent, 1, 0) > 0)
        _exit(1);

    if (o->hide != NULL)
        mount_hide(o->hide, o->hide_with);
    if (o->resolv_conf != NULL)
        mount_resolv_conf(o->resolv_conf);
    mount_proc();
    sysctl_net_fd = open("/proc/sys/net", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    protect_kernel_settings();
    reenter_working_directory();
    unshare_inner_namespaces();

    bool offload = false;
    int tap_fd = open_tap(o, &offload);
    configure(o);
    send_tap(tap_fd, o->vnet_hdr, offload);
    if (close(tap_fd) < 0)
        fail("close(tap): %s", strerror(errno));
    send_listeners(o);
    if (sysctl_net_fd >= 0) {
        close(sysctl_net_fd);
        sysctl_net_fd = -1;
    }

    sigset_t blocked;
    int signals = block_signals(&blocked);
    wait_for_go();
    /* The monitor keeps its copy of the socket; the command must not reach it. */
    close(control_fd);
    control_fd = -1;
    control_path = NULL;
    /* Nothing in the command's namespaces may ptrace its init. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    pid_t command = fork();
    if (command < 0) {
        fprintf(stderr, PROGRAM ": cannot fork: %s\n", strerror(errno));
        _exit(1);
    }
    if (command == 0) {
        close(signals);
        close(death_pipe);
        exec_command(o, &blocked);
    }

    struct pollfd fds[2] = { { .fd = signals, .events = POLLIN }, { .fd = death_pipe, .events = POLLIN } };
    for (;;) {
        poll_forever(fds, 2);
        if (fds[1].revents != 0)
            _exit(137); /* the monitor is gone; our exit ends the namespace */
        struct signalfd_siginfo info;
        while (read(signals, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
            if (info.ssi_signo != SIGCHLD) {
                if (!from_terminal(&info))
                    kill(command, (int)info.ssi_signo);
                continue;
            }
            int status;
            pid_t reaped;
            while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
                if (reaped == command)
                    _exit(exit_status_of(status));
            }
        }
    }
}

static int run_main(const struct options *o)
{
    unshare_outer_namespaces();
    int death_pipe[2];
    if (pipe2(death_pipe, O_CLOEXEC) < 0)
        fail("cannot create a pipe: %s", strerror(errno));
    sigset_t blocked;
    int signals = block_signals(&blocked);
    pid_t init = fork();
    if (init < 0)
        fail("cannot fork into the new PID namespace: %s", strerror(errno));
    if (init == 0) {
        close(death_pipe[1]);
        close(signals);
        run_init(o, death_pipe[0]);
    }
    close(death_pipe[0]);

    /* POLLRDHUP only: the go byte (POLLIN) is init's to read. */
    struct pollfd fds[2] = { { .fd = signals, .events = POLLIN }, { .fd = control_fd, .events = POLLRDHUP } };
    for (;;) {
        poll_forever(fds, 2);
        if (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            /* The caller is gone or gave up: end the whole PID namespace. */
            kill(init, SIGKILL);
            int status;
            while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
            }
            return 137;
        }
        struct signalfd_siginfo info;
        while (read(signals, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
            if (info.ssi_signo != SIGCHLD) {
                if (!from_terminal(&info))
                    kill(init, (int)info.ssi_signo);
                continue;
            }
            int status;
            if (waitpid(init, &status, WNOHANG) == init)
                return exit_status_of(status);
        }
    }
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    outer_uid = getuid();
    parse_arguments(argc, argv, &o);
    if (strcmp(o.command, "sandbox") == 0)
        return sandbox_main(&o);
    /* Connect first: the socket path lives in our mount namespace, and every
     * later error can then be reported on it. */
    connect_control(o.socket_path);
    if (strcmp(o.command, "run") == 0)
        return run_main(&o);

    join_namespaces(&o);
    bool offload = false;
    int tap_fd = open_tap(&o, &offload);
    if (o.configure)
        configure(&o);
    send_tap(tap_fd, o.vnet_hdr, offload);
    /* The parent now holds the tap; ours must not outlive this process. */
    if (close(tap_fd) < 0)
        fail("close(tap): %s", strerror(errno));
    if (close(control_fd) < 0)
        fail("close(socket): %s", strerror(errno));
    return 0;
}
