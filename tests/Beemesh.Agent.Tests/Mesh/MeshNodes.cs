using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Join;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>
/// Agents of one test mesh on 127.0.0.1 (trust domain <c>mesh.test</c>): each in its own state directory
/// under a test's root, with an ephemeral node port and tunnel port (several agents share the address),
/// joined to others by tokens of the first.
/// </summary>
internal static class MeshNodes
{
    /// <summary>The trust domain of every test mesh.</summary>
    public const string TrustDomain = "mesh.test";

    /// <summary>
    /// Starts node <paramref name="name"/> in <c>ROOT/NAME</c>, joining through <paramref name="join"/> with
    /// <paramref name="token"/> (neither for the first node); <paramref name="configure"/> changes other options.
    /// </summary>
    public static Task<AgentHost> StartAsync(string root, string name, EndPoint[]? join, string? token, Action<AgentOptions>? configure = null)
    {
        var options = new AgentOptions
        {
            StateDirectory = Path.Combine(root, name),
            TrustDomain = TrustDomain,
            NodeName = name,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            TunnelPort = 0,
            Join = join ?? [],
            JoinToken = token,
        };
        configure?.Invoke(options);
        return AgentHost.StartAsync(options);
    }

    /// <summary>A fresh join token (five minutes) of the mesh whose root <paramref name="first"/> holds.</summary>
    public static JoinToken CreateToken(AgentHost first)
    {
        using X509Certificate2 root = X509CertificateLoader.LoadCertificate(first.Authority.Root.RawData);
        return new JoinTokenStore(first.Options.StateDirectory, JoinToken.FingerprintOf(root)).Create(TimeSpan.FromMinutes(5));
    }
}
