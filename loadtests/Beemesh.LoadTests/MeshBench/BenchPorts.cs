namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// Where each comparison path's servers listen on the host's 127.0.0.1: the in-process servers,
/// the plain guest's published ports (-p), and the haproxy fronts towards each of them.
/// </summary>
internal sealed record BenchPorts(
    int HostIperf,
    int HostEcho,
    int GuestIperf,
    int GuestEcho,
    int HaproxyHostIperf,
    int HaproxyHostEcho,
    int HaproxyGuestIperf,
    int HaproxyGuestEcho);
