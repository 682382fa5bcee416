using Beemesh.Agent.Client;
using Beemesh.Agent.Mesh;
using Microsoft.AspNetCore.Http;

namespace Beemesh.Agent.Hosting;

/// <summary>The admin API's routes about the mesh of nodes (<c>GET /v1/members</c>).</summary>
internal sealed partial class AdminApi
{
    /// <summary>The node's overlay; null for a mesh of one machine (the routes then answer 404 with why).</summary>
    internal OverlayHost? Overlay { get; set; }

    /// <summary>The mesh policy set's replication; null without the overlay.</summary>
    internal PolicySync? PolicySync { get; set; }

    /// <summary>The overlay's metrics (empty without the overlay).</summary>
    internal string MeshMetrics() => Overlay?.RenderMetrics() ?? string.Empty;

    /// <summary>When this node's certificates expire and renew, renewals so far and the last failure; null without node certificates.</summary>
    internal Func<(DateTimeOffset NotAfter, DateTimeOffset RenewAt, long Renewals, string? LastError)>? NodeCertificates { get; set; }

    /// <summary>This node's name among the nodes.</summary>
    internal string? NodeName { get; set; }

    // Publishes the root-signed revocation of a node; only the node holding the root key can.
    private async Task RemoveNodeAsync(HttpContext context, string name)
    {
        if (Overlay is not { } overlay)
        {
            await ErrorAsync(context, 404, "this agent runs without the overlay (start it with --node-name and --listen)").ConfigureAwait(false);
            return;
        }

        if (!_authority.HoldsRoot)
        {
            await ErrorAsync(context, 409, "node remove: this node does not hold the trust domain's root key; run it on the first node of the mesh").ConfigureAwait(false);
            return;
        }

        if (Beemesh.Identity.Authority.NodeNames.Check(name) is string nameError)
        {
            await ErrorAsync(context, 400, "node remove: " + nameError).ConfigureAwait(false);
            return;
        }

        if (name == NodeName)
        {
            await ErrorAsync(context, 400, $"node remove: {name} is this node (the one holding the root key); it cannot revoke itself").ConfigureAwait(false);
            return;
        }

        await overlay.RevokeAsync(name, NodeRevocation.Sign(_authority, name)).ConfigureAwait(false);
        context.Response.StatusCode = 204;
    }

    // GET /v1/members/watch?since=VERSION&timeout=SECONDS: a long poll (capped by MaxWatchWait) answered once
    // the overlay changed (views, records, suspicions, counters, the revoked set) after VERSION.
    private async Task WaitForOverlayChangeAsync(HttpContext context, OverlayHost overlay)
    {
        long since = LongQuery(context.Request, "since", -1);
        long seconds = LongQuery(context.Request, "timeout", (long)_options.MaxWatchWait.TotalSeconds);
        TimeSpan wait = TimeSpan.FromSeconds(Math.Clamp(seconds, 0, (long)_options.MaxWatchWait.TotalSeconds));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        try
        {
            await overlay.WaitForChangeAsync(since, wait, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down: answer with what is there.
        }
    }

    // True when the request was one of these routes and has been answered.
    private async Task<bool> TryRouteMeshAsync(HttpContext context, string[] path, string method)
    {
        switch (path)
        {
            case ["v1", "members"] when method == "GET":
            case ["v1", "members", "watch"] when method == "GET":
                if (Overlay is not { } overlay)
                {
                    await ErrorAsync(context, 404, "this agent runs without the overlay (start it with --node-name and --listen)").ConfigureAwait(false);
                    return true;
                }

                if (path.Length == 3)
                {
                    await WaitForOverlayChangeAsync(context, overlay).ConfigureAwait(false);
                }

                // Read before the report is built, so a change in between wakes the next watch.
                long changeVersion = overlay.ChangeVersion;
                MembersReport report = await overlay.QueryAsync(node => MembersView.Build(node, NodeName ?? string.Empty, overlay.Now())).ConfigureAwait(false);
                report.PolicyVersion = PolicySync?.MeshVersion;
                report.ChangeVersion = changeVersion;
                if (NodeCertificates?.Invoke() is { } certificates)
                {
                    report.NodeCertificateExpires = certificates.NotAfter;
                    report.NodeCertificateRenews = certificates.RenewAt;
                    report.NodeCertificateRenewals = certificates.Renewals;
                    report.NodeCertificateRenewalError = certificates.LastError;
                }

                await WriteAsync(context, 200, report, AgentJsonContext.Default.MembersReport).ConfigureAwait(false);
                return true;
            case ["v1", "nodes", var name] when method == "DELETE":
                await RemoveNodeAsync(context, name).ConfigureAwait(false);
                return true;
            default:
                return false;
        }
    }
}
