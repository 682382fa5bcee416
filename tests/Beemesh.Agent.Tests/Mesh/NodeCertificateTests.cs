using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;
using Beemesh.Overlay.Records;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>Node certificates: the first node keeps its node SVID across restarts; nodes renew theirs and keep their links.</summary>
public sealed class NodeCertificateTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-nc-").FullName;

    [Fact]
    public async Task TheFirstNodeKeepsItsNodeSvidAcrossRestartsUntilItIsDue()
    {
        string thumbprint;
        string serial;
        await using (AgentHost first = await Start("a", join: null, token: null))
        {
            thumbprint = first.Node!.Svid.Thumbprint;
            serial = first.Node.Svid.SerialNumber;
            Assert.True(File.Exists(Path.Combine(first.Options.StateDirectory, RootNodeSvidStore.FileName)));
        }

        await using (AgentHost again = await Start("a", join: null, token: null))
        {
            Assert.Equal(thumbprint, again.Node!.Svid.Thumbprint);
            Assert.Equal(serial, again.Node.Svid.SerialNumber);
            Assert.True(again.Node.Svid.HasPrivateKey);
        }

        // Started past two thirds of its lifetime, the node issues itself a new one (and keeps that).
        var later = new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(250));
        string renewed;
        await using (AgentHost due = await Start("a", join: null, token: null, time: later))
        {
            renewed = due.Node!.Svid.Thumbprint;
            Assert.NotEqual(thumbprint, renewed);
            Assert.True(due.Node.Svid.NotBefore.ToUniversalTime() > DateTime.UtcNow.AddDays(249));
        }

        // A damaged file is replaced by a new node SVID rather than refusing the start.
        await File.WriteAllTextAsync(Path.Combine(_root, "a", RootNodeSvidStore.FileName), "not a certificate");
        await using (AgentHost repaired = await Start("a", join: null, token: null))
        {
            Assert.NotEqual(renewed, repaired.Node!.Svid.Thumbprint);
            Assert.Equal("a", NodeSvidValidator.Validate(repaired.Node.Svid, repaired.Authority.Bundle, "mesh.test", DateTimeOffset.UtcNow, out _));
        }
    }

    [Fact]
    public async Task NodesRenewTheirCertificatesAndKeepTheirLinks()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        try
        {
            await ChangeWait.UntilAsync(first.Overlay!, () => HasNodeRecord(first, "b"));
            await ChangeWait.UntilAsync(second.Overlay!, () => HasNodeRecord(second, "a"));
            X509Certificate2 oldSvid = X509CertificateLoader.LoadCertificate(second.Node!.Svid.RawData);
            string oldCa = Assert.Single(second.Authority.Intermediates).Thumbprint;
            long linksBefore = first.Overlay!.Counters.GetValueOrDefault("active_view_added");

            // The joined node renews through the first node: new keys, same name, saved for the next start.
            await second.RenewNodeCertificatesAsync();
            X509Certificate2 newSvid = second.Node.Svid;
            Assert.NotEqual(oldSvid.Thumbprint, newSvid.Thumbprint);
            Assert.NotEqual(oldSvid.PublicKey.EncodedKeyValue.RawData, newSvid.PublicKey.EncodedKeyValue.RawData);
            Assert.Equal("b", NodeSvidValidator.Validate(newSvid, first.Authority.Bundle, "mesh.test", DateTimeOffset.UtcNow, out _));
            Assert.NotEqual(oldCa, Assert.Single(second.Authority.Intermediates).Thumbprint);
            // New links (the node port, outbound overlay links) present the new certificate.
            Assert.Equal(newSvid.Thumbprint, second.Node.Context.TargetCertificate.Thumbprint);
            using (var tcp = new System.Net.Sockets.TcpClient())
            {
                await tcp.ConnectAsync(second.NodeEndPoint!);
                await using var tls = new System.Net.Security.SslStream(tcp.GetStream());
                await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
                {
                    TargetHost = "beemesh-overlay",
                    ApplicationProtocols = [NodeListener.OverlayProtocol],
                    ClientCertificateContext = first.Node!.Context,
                    RemoteCertificateValidationCallback = static (_, _, _, _) => true,
                });
                Assert.Equal(newSvid.Thumbprint, new X509Certificate2(tls.RemoteCertificate!).Thumbprint);
            }

            using (NodeCredentials saved = NodeCredentialStore.Load(second.Options.StateDirectory)!)
            {
                Assert.Equal(newSvid.Thumbprint, saved.NodeSvid.Thumbprint);
            }

            // A record signed after the renewal carries the new certificate and is accepted over the live link.
            OverlayRecord late = await second.Overlay!.PublishAsync(new RecordContent(RecordKind.Route, "b/after-renewal", new byte[] { 1 }, Leased: true));
            await ChangeWait.UntilAsync(first.Overlay, () => Holds(first, late));
            Assert.Null(first.Overlay.Verifier.Verify(late));
            // A record signed with the old certificate stays valid until it expires.
            Assert.All(await second.Overlay.QueryAsync(n => n.Store.Records.Where(r => r.Origin == n.Self.Id).ToList()), r => Assert.Null(first.Overlay.Verifier.Verify(r)));
            Assert.Equal(1, second.Overlay.Counters.GetValueOrDefault("node_svid_renewed"));
            Assert.Equal(linksBefore, first.Overlay.Counters.GetValueOrDefault("active_view_added"));

            // The first node renews its own from its root; b accepts what it signs next.
            string firstOld = first.Node!.Svid.Thumbprint;
            await first.RenewNodeCertificatesAsync();
            Assert.NotEqual(firstOld, first.Node.Svid.Thumbprint);
            OverlayRecord fromFirst = await first.Overlay.PublishAsync(new RecordContent(RecordKind.Route, "a/after-renewal", new byte[] { 2 }, Leased: true));
            await ChangeWait.UntilAsync(second.Overlay, () => Holds(second, fromFirst));

            // The members report shows when the certificates expire and renew.
            using var client = new AgentClient(second.Options.StateDirectory);
            MembersReport report = await client.GetMembersAsync();
            Assert.Equal(new DateTimeOffset(newSvid.NotAfter.ToUniversalTime()), report.NodeCertificateExpires);
            Assert.True(report.NodeCertificateRenews > DateTimeOffset.UtcNow.AddDays(200));
            Assert.True(report.NodeCertificateRenews < report.NodeCertificateExpires);

            // A restart presents the renewed certificate.
            string renewed = newSvid.Thumbprint;
            await second.DisposeAsync();
            second = await Start("b", join: null, token: null);
            Assert.Equal(renewed, second.Node!.Svid.Thumbprint);
            oldSvid.Dispose();
        }
        finally
        {
            await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task ARemovedNodeCannotRenew()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        using (var onA = new AgentClient(first.Options.StateDirectory))
        {
            Assert.True(await onA.RemoveNodeAsync("b"));
        }

        JoinException refused = await Assert.ThrowsAsync<JoinException>(() => second.RenewNodeCertificatesAsync());
        Assert.Equal(JoinRefusal.Revoked, refused.Refusal);
        Assert.Contains("node b was removed", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRenewalRunsWhenDueAndRetriesAfterAFailure()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        DateTimeOffset due = time.GetUtcNow().AddDays(10);
        var attempts = new List<DateTimeOffset>();
        await using var renewal = new NodeCertificateRenewal(
            () => due,
            _ =>
            {
                attempts.Add(time.GetUtcNow());
                if (attempts.Count == 1)
                {
                    throw new InvalidOperationException("the root holder is away");
                }

                due = time.GetUtcNow().AddDays(100);
                return Task.CompletedTask;
            },
            TimeSpan.FromMinutes(5),
            time,
            NullLogger.Instance);

        await ChangeWait.UntilAsync(renewal, () => renewal.NextAttempt == due);
        Assert.Empty(attempts);
        time.Advance(TimeSpan.FromDays(10) - TimeSpan.FromSeconds(1));
        Assert.Empty(attempts);
        time.Advance(TimeSpan.FromSeconds(1));
        await ChangeWait.UntilAsync(renewal, () => renewal.Failures == 1);
        Assert.Equal(due, Assert.Single(attempts));
        Assert.Equal("the root holder is away", renewal.LastError);
        Assert.Equal(attempts[0].AddMinutes(5), renewal.NextAttempt);

        time.Advance(TimeSpan.FromMinutes(5));
        await ChangeWait.UntilAsync(renewal, () => renewal.Renewals == 1);
        Assert.Equal(2, attempts.Count);
        Assert.Equal(attempts[0].AddMinutes(5), attempts[1]);
        Assert.Null(renewal.LastError);
        await ChangeWait.UntilAsync(renewal, () => renewal.NextAttempt == due);
        Assert.Equal(attempts[1].AddDays(100), renewal.NextAttempt);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Task<bool> HasNodeRecord(AgentHost host, string name) =>
        host.Overlay!.QueryAsync(n => n.Store.Get(new RecordSlot(RecordKind.Node, name)) is not null);

    private static Task<bool> Holds(AgentHost host, OverlayRecord record) =>
        host.Overlay!.QueryAsync(n => n.Store.Get(record.Slot)?.Version == record.Version);

    private Task<AgentHost> Start(string name, EndPoint[]? join, string? token, TimeProvider? time = null) =>
        MeshNodes.StartAsync(_root, name, join, token, o => o.TimeProvider = time ?? TimeProvider.System);

    private static string CreateToken(AgentHost first) => MeshNodes.CreateToken(first).ToString();
}
