using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Beemesh.Linearizability;

/// <summary>
/// Runs one operation of the model against a Dapr state store over Dapr's HTTP API and says how it
/// ended, as a <see cref="KvOperation"/> with its call and return times:
/// <list type="bullet">
/// <item>read: <c>GET /v1.0/state/STORE/KEY</c>: 200 with the value (a JSON string) and its ETag, 204 absent;</item>
/// <item>write: <c>POST /v1.0/state/STORE</c> <c>[{key, value}]</c>;</item>
/// <item>compare-and-set: the same with <c>etag</c> and <c>first-write</c>; create: <c>first-write</c> without an ETag;</item>
/// <item>delete: <c>DELETE /v1.0/state/STORE/KEY</c>, with <c>If-Match</c> when conditional.</item>
/// </list>
/// 2xx is ok; 409 is a mismatch for a conditional operation; other 4xx (a refused request) definitely
/// had no effect; a 5xx (the store gave up, e.g. no quorum within its deadline: the write may still
/// commit), a timeout or a cut connection is unknown.
/// </summary>
public sealed class DaprStateClient(HttpClient http, Uri storeUrl)
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    /// <summary>Responses no operation of its kind should get (e.g. 409 for an unconditional write); recorded as failed.</summary>
    public List<string> Anomalies { get; } = [];

    /// <summary>
    /// Runs <paramref name="operation"/> (its kind, key, value and expected ETag; other fields are
    /// ignored): records its call in <paramref name="journal"/> before sending, and its end after.
    /// </summary>
    public async Task<KvOperation> RunAsync(KvOperation operation, ClientJournal journal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operation);
        ArgumentNullException.ThrowIfNull(journal);
        using HttpRequestMessage request = BuildRequest(operation);
        KvOperation called = operation with { CallTime = HistoryRecorder.Now, ReturnTime = 0, Outcome = OperationOutcome.Unknown, ResultEtag = null, Value = operation.Kind == OperationKind.Read ? null : operation.Value };
        long number = journal.Call(called);
        KvOperation ended;
        try
        {
            using HttpResponseMessage response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            long returned = HistoryRecorder.Now;
            ended = Interpret(called, response.StatusCode, body, Header(response, "ETag"), returned);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            ended = called;
        }

        if (ended.Outcome != OperationOutcome.Unknown)
        {
            journal.Done(number, ended);
        }

        return ended;
    }

    /// <summary>The operation <paramref name="called"/> as ended by a response (pure: no I/O).</summary>
    public KvOperation Interpret(KvOperation called, HttpStatusCode status, string body, string? etag, long returned)
    {
        ArgumentNullException.ThrowIfNull(called);
        int code = (int)status;
        bool conditional = called.Kind is OperationKind.CompareAndSet or OperationKind.Create
            || (called.Kind == OperationKind.Delete && called.ExpectedEtag is not null);
        KvOperation Ended(OperationOutcome outcome) => called with { ReturnTime = returned, Outcome = outcome };
        if (code >= 500)
        {
            return called;
        }

        if (code == 409 && conditional)
        {
            return Ended(OperationOutcome.Mismatch);
        }

        if (code is < 200 or >= 300)
        {
            lock (Anomalies)
            {
                Anomalies.Add($"{called}: HTTP {code} {body}");
            }

            return Ended(OperationOutcome.Failed);
        }

        if (called.Kind != OperationKind.Read)
        {
            return Ended(OperationOutcome.Ok);
        }

        if (code == 204)
        {
            return Ended(OperationOutcome.Ok) with { Value = null, ResultEtag = null };
        }

        string value;
        try
        {
            value = JsonSerializer.Deserialize<string>(body) ?? throw new JsonException("null");
        }
        catch (JsonException)
        {
            // Not a value this client wrote: recorded as returned, which no write explains.
            value = body;
        }

        return Ended(OperationOutcome.Ok) with { Value = value, ResultEtag = string.IsNullOrEmpty(etag) ? null : etag.Trim('"') };
    }

    private HttpRequestMessage BuildRequest(KvOperation operation)
    {
        string key = Uri.EscapeDataString(operation.Key);
        switch (operation.Kind)
        {
            case OperationKind.Read:
                return new HttpRequestMessage(HttpMethod.Get, new Uri(storeUrl, storeUrl.AbsolutePath.TrimEnd('/') + "/" + key));
            case OperationKind.Delete:
                var delete = new HttpRequestMessage(HttpMethod.Delete, new Uri(storeUrl, storeUrl.AbsolutePath.TrimEnd('/') + "/" + key));
                if (operation.ExpectedEtag is not null)
                {
                    delete.Headers.TryAddWithoutValidation("If-Match", operation.ExpectedEtag);
                }

                return delete;
            default:
                using (var buffer = new MemoryStream())
                {
                    using (var json = new Utf8JsonWriter(buffer))
                    {
                        json.WriteStartArray();
                        json.WriteStartObject();
                        json.WriteString("key", operation.Key);
                        json.WriteString("value", operation.Value);
                        if (operation.Kind == OperationKind.CompareAndSet)
                        {
                            json.WriteString("etag", operation.ExpectedEtag);
                        }

                        if (operation.Kind is OperationKind.CompareAndSet or OperationKind.Create)
                        {
                            json.WriteStartObject("options");
                            json.WriteString("concurrency", "first-write");
                            json.WriteEndObject();
                        }

                        json.WriteEndObject();
                        json.WriteEndArray();
                    }

                    var content = new ByteArrayContent(buffer.ToArray());
                    content.Headers.ContentType = Json;
                    return new HttpRequestMessage(HttpMethod.Post, storeUrl) { Content = content };
                }
        }
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.NonValidated.TryGetValues(name, out HeaderStringValues values) ? values.FirstOrDefault() : null;
}
