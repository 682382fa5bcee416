namespace Beemesh.Agent.Tests;

/// <summary>
/// Python source of one HTTP/1.1 request to the agent's admin socket, for the test processes that
/// stand in for a workload trying the admin API (linked into the end-to-end tests too).
/// </summary>
internal static class AdminRequestScript
{
    /// <summary>
    /// Defines <c>admin_request(path, method, url, body, headers="")</c>, which returns
    /// <c>(status, body)</c> and raises <c>OSError</c> when the socket cannot be reached;
    /// <c>headers</c> is extra header lines, each ending in CRLF.
    /// </summary>
    public const string Function = """
        import socket
        def admin_request(path, method, url, body, headers=""):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            b = body.encode()
            s.sendall(("%s %s HTTP/1.1\r\nHost: agent\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n" % (method, url, headers, len(b))).encode() + b)
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            head, _, rest = data.decode(errors="replace").partition("\r\n\r\n")
            return head.split("\r\n")[0].split(" ")[1], rest

        """;
}
