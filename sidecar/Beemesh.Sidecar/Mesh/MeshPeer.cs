using System.Net;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Mesh;

/// <summary>One workload of the mesh as the directory knows it.</summary>
/// <param name="SpiffeId">The identity its sidecar must present on the tunnel.</param>
/// <param name="TunnelEndpoint">Where its sidecar's mTLS tunnel server listens.</param>
/// <param name="MeshAddress">The workload's mesh address (what other guests dial).</param>
/// <param name="ServerName">
/// For a workload of another node: the TLS server name its node's tunnel port routes by
/// (<see cref="TunnelEndpoint"/> is then that port); null for a workload of this node.
/// </param>
/// <param name="NodeName">For a workload of another node: that node's name (its node SVID is <c>spiffe://TD/node/NAME</c>); else null.</param>
/// <param name="QuicEndpoint">
/// For a workload of another node that advertises QUIC (capability <c>h3</c>): that node's QUIC
/// tunnel endpoint (UDP); else null (TLS over TCP only).
/// </param>
public sealed record MeshPeer(SpiffeId SpiffeId, IPEndPoint TunnelEndpoint, IPAddress MeshAddress, string? ServerName = null, string? NodeName = null, IPEndPoint? QuicEndpoint = null);
