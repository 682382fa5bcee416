using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>One server for the whole class: every property run shares it, as a workload's requests would.</summary>
public sealed class StateApiClassFixture : IAsyncLifetime
{
    public StateApiFixture Api { get; private set; } = null!;

    public async Task InitializeAsync() => Api = await StateApiFixture.StartAsync();

    public async Task DisposeAsync() => await Api.DisposeAsync();
}

/// <summary>
/// Whatever body a workload sends, the HTTP state API answers with one of Dapr's statuses (an error
/// with Dapr's error body) and keeps serving.
/// </summary>
public sealed class DaprHttpApiPropertyTests(StateApiClassFixture fixture) : IClassFixture<StateApiClassFixture>
{
    private static readonly string[] Paths = ["/v1.0/state/statestore", "/v1.0/state/statestore/bulk", "/v1.0/state/statestore/transaction"];

    /// <summary>Bodies near the grammar (fragments of valid requests glued together) as well as plain noise.</summary>
    private static readonly string[] Fragments =
    [
        "[", "]", "{", "}", ",", ":", "\"key\"", "\"value\"", "\"etag\"", "\"k\"", "\"a||b\"", "1", "null", "true",
        "\"metadata\"", "{\"ttlInSeconds\":\"-5\"}", "\"options\"", "{\"concurrency\":\"first-write\"}", "\"keys\"",
        "\"operations\"", "\"operation\"", "\"upsert\"", "\"delete\"", "\"request\"", "\"1-1\"", "\"\\u0000\"",
    ];

    public static Arbitrary<string> Bodies() => Gen.OneOf(
            Gen.ArrayOf(Gen.Elements(Fragments)).Select(parts => string.Concat(parts)),
            ArbMap.Default.GeneratorFor<string>().Select(s => s ?? string.Empty))
        .ToArbitrary();

    [Property(Arbitrary = [typeof(DaprHttpApiPropertyTests)], MaxTest = 200)]
    public bool AnyBodyGetsADaprAnswerAndTheServerKeepsServing(string body, byte which)
    {
        string path = Paths[which % Paths.Length];
        using HttpResponseMessage response = fixture.Api.Http
            .PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json")).GetAwaiter().GetResult();
        string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        int status = (int)response.StatusCode;
        bool known = status is 200 or 204 or 400 or 409 or 500;
        bool errorBody = status < 400 || text.StartsWith("{\"errorCode\":\"ERR_", StringComparison.Ordinal);
        using HttpResponseMessage health = fixture.Api.Http.GetAsync("/v1.0/healthz").GetAwaiter().GetResult();
        return known && errorBody && health.StatusCode == HttpStatusCode.NoContent;
    }
}
