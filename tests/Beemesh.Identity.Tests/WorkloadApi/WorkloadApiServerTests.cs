using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe.Jwt;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Grpc.Core;
using Grpc.Net.Client;

namespace Beemesh.Identity.Tests.WorkloadApi;

public sealed class WorkloadApiServerTests
{
    // Guards against a hang, not a timing assertion: every awaited event is driven by the fake clock.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task RegisteredCallerGetsAnSvidTheBundleValidates()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");

        X509Context context = await client.FetchX509ContextAsync().WaitAsync(Guard);

        X509Svid svid = Assert.Single(context.Svids);
        Assert.Equal("spiffe://example.org/web", svid.Id.ToString());
        Assert.True(svid.Certificate.HasPrivateKey);
        Assert.Equal(fixture.Authority.Root.Thumbprint, Assert.Single(context.BundleFor("example.org")).Thumbprint);
        Assert.Equal(
            SvidValidationResult.Valid,
            SvidValidator.Validate(svid.Certificate, svid.Intermediates, context.BundleFor("example.org"), "example.org", fixture.Time.GetUtcNow(), out _));
    }

    [Fact]
    public void ClaimsAStructCannotHoldAreInvalidArgument()
    {
        // A number past a double's range is valid JSON (the validator accepts it) but not a Struct value.
        Assert.Equal(2, Identity.WorkloadApi.WorkloadApiService.ClaimsStruct("""{"sub":"spiffe://example.org/a","exp":1}""").Fields.Count);
        RpcException e = Assert.Throws<RpcException>(() => Identity.WorkloadApi.WorkloadApiService.ClaimsStruct("""{"sub":"spiffe://example.org/a","n":1e400}"""));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("claims", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownCallerIsPermissionDenied()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync(selfId: null);

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => client.FetchX509ContextAsync().WaitAsync(Guard));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        RpcException jwt = await Assert.ThrowsAsync<RpcException>(() => client.FetchJwtSvidsAsync(["db"]).WaitAsync(Guard));
        Assert.Equal(StatusCode.PermissionDenied, jwt.StatusCode);
    }

    [Fact]
    public async Task CallWithoutSecurityHeaderIsInvalidArgument()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");
        using GrpcChannel channel = WorkloadApiClient.CreateChannel(client.SocketPath);
        var raw = Marshallers.Create<byte[]>(b => b, b => b);
        // The standard's path: the proto has no package, so the service is plain "SpiffeWorkloadAPI".
        var method = new Method<byte[], byte[]>(MethodType.ServerStreaming, "SpiffeWorkloadAPI", "FetchX509SVID", raw, raw);

        using AsyncServerStreamingCall<byte[]> call = channel.CreateCallInvoker().AsyncServerStreamingCall(method, null, new CallOptions(), []);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Guard));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);

        // Same raw call with the header succeeds: the failure above is the header, not the path.
        var headers = new Metadata { { WorkloadApiClient.SecurityHeader, "true" } };
        using AsyncServerStreamingCall<byte[]> ok = channel.CreateCallInvoker().AsyncServerStreamingCall(method, null, new CallOptions(headers), []);
        Assert.True(await ok.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Guard));
        Assert.NotEmpty(ok.ResponseStream.Current);
    }

    [Fact]
    public async Task StreamPushesANewSvidAfterHalfLife()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");
        using var cancel = new CancellationTokenSource();
        await using IAsyncEnumerator<X509Context> stream = client.WatchX509ContextAsync(cancel.Token).GetAsyncEnumerator(cancel.Token);

        Assert.True(await stream.MoveNextAsync().AsTask().WaitAsync(Guard));
        X509Certificate2 first = stream.Current.DefaultSvid.Certificate;
        // One hour SVID: rotation is due between 27 and 33 minutes.
        fixture.Time.Advance(TimeSpan.FromMinutes(34));
        Assert.True(await stream.MoveNextAsync().AsTask().WaitAsync(Guard));
        X509Certificate2 second = stream.Current.DefaultSvid.Certificate;

        Assert.NotEqual(first.SerialNumber, second.SerialNumber);
        Assert.True(second.NotAfter > first.NotAfter);
        Assert.NotEqual(first.GetPublicKeyString(), second.GetPublicKeyString());
        cancel.Cancel();
    }

    [Fact]
    public async Task StreamDoesNotRotateBeforeTheJitterWindow()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");
        using var cancel = new CancellationTokenSource();
        await using IAsyncEnumerator<X509Context> stream = client.WatchX509ContextAsync(cancel.Token).GetAsyncEnumerator(cancel.Token);
        Assert.True(await stream.MoveNextAsync().AsTask().WaitAsync(Guard));
        string firstSerial = stream.Current.DefaultSvid.Certificate.SerialNumber;

        fixture.Time.Advance(TimeSpan.FromMinutes(26));
        // A bundle change forces a message; it must carry the same SVID, so no rotation happened yet.
        using X509Certificate2 foreignRoot = X509CertificateLoader.LoadCertificate(fixture.Authority.Root.RawData);
        fixture.Authority.SetFederatedBundle("other.org", [foreignRoot]);
        Assert.True(await stream.MoveNextAsync().AsTask().WaitAsync(Guard));
        Assert.Equal(firstSerial, stream.Current.DefaultSvid.Certificate.SerialNumber);
        Assert.Single(stream.Current.BundleFor("other.org"));
        cancel.Cancel();
    }

    [Fact]
    public async Task X509BundlesStreamCarriesTheRoot()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");
        using var cancel = new CancellationTokenSource();
        await using var stream = client.WatchX509BundlesAsync(cancel.Token).GetAsyncEnumerator(cancel.Token);
        Assert.True(await stream.MoveNextAsync().AsTask().WaitAsync(Guard));
        Assert.Equal(fixture.Authority.Root.Thumbprint, Assert.Single(stream.Current["example.org"]).Thumbprint);
        cancel.Cancel();
    }

    [Fact]
    public async Task JwtSvidIsFetchedAndValidated()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");

        JwtSvid svid = Assert.Single(await client.FetchJwtSvidsAsync(["db"]).WaitAsync(Guard));
        Assert.Equal("spiffe://example.org/web", svid.Id.ToString());

        (var id, string claims) = await client.ValidateJwtSvidAsync(svid.Token, "db").WaitAsync(Guard);
        Assert.Equal("spiffe://example.org/web", id.ToString());
        Assert.Contains("\"db\"", claims, StringComparison.Ordinal);

        RpcException wrongAudience = await Assert.ThrowsAsync<RpcException>(() => client.ValidateJwtSvidAsync(svid.Token, "cache").WaitAsync(Guard));
        Assert.Equal(StatusCode.InvalidArgument, wrongAudience.StatusCode);

        IReadOnlyDictionary<string, JwtBundle> bundles = await client.FetchJwtBundlesAsync().WaitAsync(Guard);
        Assert.Equal(JwtSvidValidationResult.Valid, JwtSvidValidator.Validate(svid.Token, "db", bundles["example.org"], "example.org", fixture.Time.GetUtcNow(), out _, out _));

        fixture.Time.Advance(TimeSpan.FromMinutes(6));
        RpcException expired = await Assert.ThrowsAsync<RpcException>(() => client.ValidateJwtSvidAsync(svid.Token, "db").WaitAsync(Guard));
        Assert.Equal(StatusCode.InvalidArgument, expired.StatusCode);
    }

    [Fact]
    public async Task JwtSvidAudiencesAreBounded()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");

        string[] many = [.. Enumerable.Range(0, 33).Select(i => $"aud{i}")];
        RpcException tooMany = await Assert.ThrowsAsync<RpcException>(() => client.FetchJwtSvidsAsync(many).WaitAsync(Guard));
        Assert.Equal(StatusCode.InvalidArgument, tooMany.StatusCode);
        Assert.Contains("at most 32 audiences", tooMany.Status.Detail, StringComparison.Ordinal);

        RpcException empty = await Assert.ThrowsAsync<RpcException>(() => client.FetchJwtSvidsAsync(["db", ""]).WaitAsync(Guard));
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
        RpcException tooLong = await Assert.ThrowsAsync<RpcException>(() => client.FetchJwtSvidsAsync([new string('a', 1025)]).WaitAsync(Guard));
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);

        // The bound itself is served, and the server keeps serving after the refusals.
        JwtSvid svid = Assert.Single(await client.FetchJwtSvidsAsync(many[..32]).WaitAsync(Guard));
        Assert.Equal("spiffe://example.org/web", svid.Id.ToString());
    }

    [Fact]
    public async Task JwtSvidForAnotherIdIsPermissionDenied()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient client = await fixture.StartServerAsync("spiffe://example.org/web");
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => client.FetchJwtSvidsAsync(["db"], "spiffe://example.org/admin").WaitAsync(Guard));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
    }
}
