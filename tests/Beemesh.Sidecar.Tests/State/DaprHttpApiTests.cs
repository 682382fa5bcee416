using System.Net;
using System.Text;
using System.Text.Json;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>Dapr's HTTP state contract, in process over loopback: statuses, ETag headers and error bodies.</summary>
public sealed class DaprHttpApiTests
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string errorCode)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        using JsonDocument document = JsonDocument.Parse(body);
        Assert.Equal(errorCode, document.RootElement.GetProperty("errorCode").GetString());
        Assert.False(string.IsNullOrEmpty(document.RootElement.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task SaveGetDeleteRoundTripWithETags()
    {
        await using var api = await StateApiFixture.StartAsync();
        HttpResponseMessage saved = await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"order","value":{"id":1,"name":"x"}}]"""));
        Assert.Equal(HttpStatusCode.NoContent, saved.StatusCode);

        HttpResponseMessage got = await api.Http.GetAsync("/v1.0/state/statestore/order");
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        Assert.Equal("""{"id":1,"name":"x"}""", await got.Content.ReadAsStringAsync());
        string etag = got.Headers.GetValues("ETag").Single();
        Assert.NotEmpty(etag);
        // Stored under the app's scope.
        Assert.NotNull(api.Store.Get("api||order"));

        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.GetAsync("/v1.0/state/statestore/missing")).StatusCode);

        var staleDelete = new HttpRequestMessage(HttpMethod.Delete, "/v1.0/state/statestore/order");
        staleDelete.Headers.TryAddWithoutValidation("If-Match", "1-1");
        await AssertErrorAsync(await api.Http.SendAsync(staleDelete), HttpStatusCode.Conflict, "ERR_STATE_DELETE");

        var delete = new HttpRequestMessage(HttpMethod.Delete, "/v1.0/state/statestore/order");
        delete.Headers.TryAddWithoutValidation("If-Match", etag);
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.SendAsync(delete)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.GetAsync("/v1.0/state/statestore/order")).StatusCode);
    }

    [Fact]
    public async Task ETagMismatchIs409AndFirstWriteOnAnExistingKeyToo()
    {
        await using var api = await StateApiFixture.StartAsync();
        await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":"v1"}]"""));
        string etag = (await api.Http.GetAsync("/v1.0/state/statestore/k")).Headers.GetValues("ETag").Single();
        await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":"v2"}]"""));

        await AssertErrorAsync(
            await api.Http.PostAsync("/v1.0/state/statestore", Json($$$"""[{"key":"k","value":"v3","etag":"{{{etag}}}","options":{"concurrency":"first-write"}}]""")),
            HttpStatusCode.Conflict, "ERR_STATE_SAVE");
        await AssertErrorAsync(
            await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":"v3","options":{"concurrency":"first-write"}}]""")),
            HttpStatusCode.Conflict, "ERR_STATE_SAVE");
        await AssertErrorAsync(
            await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":"v3","etag":"nonsense"}]""")),
            HttpStatusCode.BadRequest, "ERR_STATE_SAVE");
        Assert.Equal("\"v2\"", await (await api.Http.GetAsync("/v1.0/state/statestore/k")).Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.PostAsync("/v1.0/state/statestore",
            Json("""[{"key":"k","value":"v4","etag":"1-1","options":{"concurrency":"last-write"}}]"""))).StatusCode);
    }

    [Fact]
    public async Task BadRequestsGetDaprsErrorCodes()
    {
        await using var api = await StateApiFixture.StartAsync();
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/nosuch", Json("""[{"key":"k","value":1}]""")), HttpStatusCode.BadRequest, "ERR_STATE_STORE_NOT_FOUND");
        await AssertErrorAsync(await api.Http.GetAsync("/v1.0/state/nosuch/k"), HttpStatusCode.BadRequest, "ERR_STATE_STORE_NOT_FOUND");
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":""")), HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST");
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore", Json("""{"key":"k"}""")), HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST");
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"other||k","value":1}]""")), HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST");
        await AssertErrorAsync(await api.Http.GetAsync("/v1.0/state/statestore/other%7C%7Ck"), HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST");
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":1,"metadata":{"ttlInSeconds":"soon"}}]""")), HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST");
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":1,"options":{"concurrency":"sometimes"}}]""")), HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST");
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore/transaction", Json("""{"operations":[{"operation":"merge","request":{"key":"k"}}]}""")), HttpStatusCode.BadRequest, "ERR_NOT_SUPPORTED_STATE_OPERATION");
        // Nothing of the refused requests was stored.
        Assert.Equal(0, api.Store.Count);
    }

    [Fact]
    public async Task AValueOverTheLimitIsRefusedWith413AndTheServerKeepsServing()
    {
        await using var api = await StateApiFixture.StartAsync();
        string big = new('x', 10 * 1024 * 1024);
        await AssertErrorAsync(await api.Http.PostAsync("/v1.0/state/statestore", Json($$"""[{"key":"k","value":"{{big}}"}]""")), HttpStatusCode.RequestEntityTooLarge, "ERR_REQUEST_TOO_LARGE");
        Assert.Equal(0, api.Store.Count);
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"k","value":1}]"""))).StatusCode);
    }

    [Fact]
    public async Task BulkGetReturnsDataAndETagsAndOnlyTheKeyForMissingOnes()
    {
        await using var api = await StateApiFixture.StartAsync();
        await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"a","value":{"n":1}},{"key":"b","value":"two"}]"""));
        HttpResponseMessage bulk = await api.Http.PostAsync("/v1.0/state/statestore/bulk", Json("""{"keys":["a","b","c"],"parallelism":10}"""));
        Assert.Equal(HttpStatusCode.OK, bulk.StatusCode);
        using JsonDocument document = JsonDocument.Parse(await bulk.Content.ReadAsStringAsync());
        JsonElement[] items = document.RootElement.EnumerateArray().ToArray();
        Assert.Equal(["a", "b", "c"], items.Select(i => i.GetProperty("key").GetString()));
        Assert.Equal(1, items[0].GetProperty("data").GetProperty("n").GetInt32());
        Assert.Equal("two", items[1].GetProperty("data").GetString());
        Assert.Equal(api.Store.Get("api||a")!.ETag, items[0].GetProperty("etag").GetString());
        Assert.False(items[2].TryGetProperty("data", out _));
        Assert.False(items[2].TryGetProperty("etag", out _));
    }

    [Fact]
    public async Task ATransactionIsAllOrNothingAndAnETagMismatchInsideIs500()
    {
        await using var api = await StateApiFixture.StartAsync();
        await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"x","value":1}]"""));
        await AssertErrorAsync(
            await api.Http.PostAsync("/v1.0/state/statestore/transaction", Json("""
                {"operations":[
                  {"operation":"upsert","request":{"key":"y","value":2}},
                  {"operation":"delete","request":{"key":"x","etag":"1-1"}}]}
                """)),
            HttpStatusCode.InternalServerError, "ERR_STATE_TRANSACTION");
        Assert.Null(api.Store.Get("api||y"));

        string etag = api.Store.Get("api||x")!.ETag;
        HttpResponseMessage ok = await api.Http.PostAsync("/v1.0/state/statestore/transaction", Json($$$"""
            {"operations":[
              {"operation":"upsert","request":{"key":"y","value":2}},
              {"operation":"delete","request":{"key":"x","etag":"{{{etag}}}"}}]}
            """));
        Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);
        Assert.NotNull(api.Store.Get("api||y"));
        Assert.Null(api.Store.Get("api||x"));
    }

    [Fact]
    public async Task TtlInSecondsSetsTheExpiryHeader()
    {
        await using var api = await StateApiFixture.StartAsync();
        DateTimeOffset before = DateTimeOffset.UtcNow;
        await api.Http.PostAsync("/v1.0/state/statestore", Json("""[{"key":"t","value":1,"metadata":{"ttlInSeconds":"3600"}}]"""));
        HttpResponseMessage got = await api.Http.GetAsync("/v1.0/state/statestore/t");
        DateTimeOffset expires = DateTimeOffset.Parse(got.Headers.GetValues("metadata.ttlExpireTime").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(expires, before.AddSeconds(3599), before.AddSeconds(3602));
    }

    [Fact]
    public async Task HealthzAnswers204()
    {
        await using var api = await StateApiFixture.StartAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.GetAsync("/v1.0/healthz/outbound")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.GetAsync("/v1.0/healthz")).StatusCode);
    }
}
