using System.Net;
using System.Text;

namespace Beemesh.Linearizability.Tests;

/// <summary>How the Dapr HTTP client turns operations into requests and answers into outcomes (against a fake handler).</summary>
public sealed class DaprStateClientTests : IDisposable
{
    private static readonly Uri Store = new("http://127.0.0.1:3500/v1.0/state/statestore");
    private readonly string _dir = Directory.CreateTempSubdirectory("dapr-client-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task RequestsAreDaprsAndAnswersBecomeOutcomes()
    {
        var handler = new Handler();
        using var http = new HttpClient(handler);
        var client = new DaprStateClient(http, Store);
        string path = Path.Combine(_dir, "j");
        var results = new List<KvOperation>();
        using (var journal = new ClientJournal(path))
        {
            async Task Run(KvOperation op, Func<HttpResponseMessage> answer)
            {
                handler.Answer = answer;
                results.Add(await client.RunAsync(op, journal, CancellationToken.None));
            }

            await Run(KvOperation.Write("a b", 0, 0, "v1"), () => new HttpResponseMessage(HttpStatusCode.NoContent));
            await Run(KvOperation.Read("a b", 0, 0, null), () =>
            {
                var r = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("\"v1\"", Encoding.UTF8, "application/json") };
                r.Headers.TryAddWithoutValidation("ETag", "7");
                return r;
            });
            await Run(KvOperation.CompareAndSet("a b", 0, 0, "7", "v2", OperationOutcome.Unknown), () => new HttpResponseMessage(HttpStatusCode.Conflict));
            await Run(KvOperation.Create("a b", 0, 0, "v3", OperationOutcome.Unknown), () => new HttpResponseMessage(HttpStatusCode.InternalServerError));
            await Run(KvOperation.Delete("a b", 0, 0, OperationOutcome.Unknown, expected: "7"), () => throw new HttpRequestException("connection reset"));
            await Run(KvOperation.Read("c", 0, 0, null), () => new HttpResponseMessage(HttpStatusCode.NoContent));
            await Run(KvOperation.Write("c", 0, 0, "v4"), () => new HttpResponseMessage(HttpStatusCode.Conflict));
        }

        Assert.Equal(
            [
                "POST /v1.0/state/statestore [{\"key\":\"a b\",\"value\":\"v1\"}]",
                "GET /v1.0/state/statestore/a%20b ",
                "POST /v1.0/state/statestore [{\"key\":\"a b\",\"value\":\"v2\",\"etag\":\"7\",\"options\":{\"concurrency\":\"first-write\"}}]",
                "POST /v1.0/state/statestore [{\"key\":\"a b\",\"value\":\"v3\",\"options\":{\"concurrency\":\"first-write\"}}]",
                "DELETE /v1.0/state/statestore/a%20b If-Match:7 ",
                "GET /v1.0/state/statestore/c ",
                "POST /v1.0/state/statestore [{\"key\":\"c\",\"value\":\"v4\"}]",
            ],
            handler.Requests);
        Assert.Equal(
            [OperationOutcome.Ok, OperationOutcome.Ok, OperationOutcome.Mismatch, OperationOutcome.Unknown, OperationOutcome.Unknown, OperationOutcome.Ok, OperationOutcome.Failed],
            results.Select(r => r.Outcome));
        Assert.Equal(("v1", "7"), (results[1].Value, results[1].ResultEtag));
        Assert.Null(results[5].Value);
        Assert.True(results.Where(r => r.Outcome != OperationOutcome.Unknown).All(r => r.CallTime > 0 && r.ReturnTime >= r.CallTime));
        Assert.Contains("HTTP 409", Assert.Single(client.Anomalies), StringComparison.Ordinal);

        // The journal holds the same: the two unknown ones from their calls alone.
        List<KvOperation> journalled = ClientJournal.ReadFile(path);
        Assert.Equal(results.Select(r => r.Outcome), journalled.Select(r => r.Outcome));
        Assert.Equal(results.Where(r => r.Outcome != OperationOutcome.Unknown), journalled.Where(r => r.Outcome != OperationOutcome.Unknown).Select(r => r with { Id = 0 }));
    }

    private sealed class Handler : HttpMessageHandler
    {
        public Func<HttpResponseMessage> Answer { get; set; } = () => new HttpResponseMessage(HttpStatusCode.NoContent);

        public List<string> Requests { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            string body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
            string ifMatch = request.Headers.NonValidated.TryGetValues("If-Match", out var values) ? $"If-Match:{values} " : "";
            Requests.Add($"{request.Method} {request.RequestUri!.AbsolutePath} {ifMatch}{body}".TrimEnd() + (body.Length == 0 ? " " : ""));
            return Answer();
        }
    }
}
