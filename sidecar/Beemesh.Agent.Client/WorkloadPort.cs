namespace Beemesh.Agent.Client;

/// <summary>A port a workload serves on, and how the mesh carries it.</summary>
public sealed class WorkloadPort
{
    /// <summary>The port number (1-65535).</summary>
    public int Port { get; set; }

    /// <summary><c>tcp</c> (opaque tunnel) or <c>http</c> (per-request authorization).</summary>
    public string Protocol { get; set; } = "tcp";
}
