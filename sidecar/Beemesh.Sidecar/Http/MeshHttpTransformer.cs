using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// Request transforms on the way into the workload: keep the caller's Host (the upstream authority
/// is a pooling key, not a name), and replace any <c>x-forwarded-client-cert</c> the caller sent
/// with the one identity this sidecar verified, as Istio's sidecars do
/// (<c>By=&lt;this workload&gt;;URI=&lt;caller&gt;</c>, Envoy's XFCC element syntax).
/// </summary>
internal sealed class MeshHttpTransformer(Func<string> workloadId) : HttpTransformer
{
    /// <summary>The header name, lower case as HTTP/2 requires.</summary>
    public const string ClientCertHeader = "x-forwarded-client-cert";

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        MeshCaller caller = httpContext.Features.Get<MeshCaller>() ?? throw new InvalidOperationException("request without a tunnel caller");
        HttpRequestHeaders headers = proxyRequest.Headers;
        headers.Remove(ClientCertHeader);
        headers.TryAddWithoutValidation(ClientCertHeader, $"By={workloadId()};URI={caller.Id}");
        headers.Host = httpContext.Request.Host.HasValue ? httpContext.Request.Host.Value : null;
    }
}
