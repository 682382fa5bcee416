using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// Who opened a tunnelled HTTP connection and for which port: set by the tunnel server as a
/// connection feature of the in-process HTTP server, so every request on the connection knows its
/// caller without trusting anything the caller wrote into the HTTP stream.
/// </summary>
/// <param name="Id">The caller's SPIFFE ID, from its verified SVID.</param>
/// <param name="Certificate">The caller's SVID as presented on the tunnel.</param>
/// <param name="MeshAddress">The caller's mesh address (the source the workload sees).</param>
/// <param name="Port">The workload port named by the CONNECT's authority.</param>
internal sealed record MeshCaller(SpiffeId Id, X509Certificate2 Certificate, IPAddress MeshAddress, int Port);
