using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Microsoft.AspNetCore.Http;

namespace Beemesh.Sidecar.State;

/// <summary>
/// Dapr's state API over HTTP (https://docs.dapr.io/reference/api/state_api/), served under
/// <c>/v1.0</c>:
/// <list type="bullet">
/// <item><c>POST /v1.0/state/{store}</c> save <c>[{key, value, etag?, metadata?, options?}]</c> → 204</item>
/// <item><c>GET /v1.0/state/{store}/{key}</c> → 200 with the stored bytes and <c>ETag</c>, or 204 when absent</item>
/// <item><c>DELETE /v1.0/state/{store}/{key}</c> with <c>If-Match</c> → 204</item>
/// <item><c>POST /v1.0/state/{store}/bulk</c> <c>{keys}</c> → 200 <c>[{key, data?, etag?}]</c></item>
/// <item><c>POST /v1.0/state/{store}/transaction</c> <c>{operations: [{operation, request}]}</c> → 204</item>
/// <item><c>GET /v1.0/healthz</c> and <c>/v1.0/healthz/outbound</c> → 204 (the SDKs wait on them)</item>
/// </list>
/// Errors carry <c>{"errorCode":"ERR_...","message":"..."}</c> with Dapr's codes and statuses.
/// </summary>
public sealed class DaprHttpApi
{
    private const string Prefix = "/v1.0/state/";
    private readonly StateStoreSet _stores;

    /// <summary>Serves <paramref name="stores"/>.</summary>
    public DaprHttpApi(StateStoreSet stores)
    {
        ArgumentNullException.ThrowIfNull(stores);
        _stores = stores;
    }

    /// <summary>Handles one request under <c>/v1.0</c>.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        HttpRequest request = context.Request;
        string path = request.Path.Value ?? string.Empty;
        if (path is "/v1.0/healthz" or "/v1.0/healthz/outbound")
        {
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }

        if (!path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            await WriteErrorAsync(context, new StateApiError(404, Grpc.Core.StatusCode.Unimplemented, "ERR_DIRECT_INVOKE", $"{path} is not served here: only the state API is")).ConfigureAwait(false);
            return;
        }

        string rest = path[Prefix.Length..];
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        string storeName = Uri.UnescapeDataString(slash < 0 ? rest : rest[..slash]);
        string? tail = slash < 0 ? null : Uri.UnescapeDataString(rest[(slash + 1)..]);
        StateApiError? error;
        if (HttpMethods.IsPost(request.Method) && tail is null)
        {
            error = await SaveAsync(context, storeName).ConfigureAwait(false);
        }
        else if (HttpMethods.IsPost(request.Method) && tail == "bulk")
        {
            error = await BulkAsync(context, storeName).ConfigureAwait(false);
        }
        else if (HttpMethods.IsPost(request.Method) && tail == "transaction")
        {
            error = await TransactionAsync(context, storeName).ConfigureAwait(false);
        }
        else if (HttpMethods.IsGet(request.Method) && tail is not null)
        {
            error = await GetAsync(context, storeName, tail).ConfigureAwait(false);
        }
        else if (HttpMethods.IsDelete(request.Method) && tail is not null)
        {
            error = await DeleteAsync(context, storeName, tail).ConfigureAwait(false);
        }
        else
        {
            error = new StateApiError(405, Grpc.Core.StatusCode.Unimplemented, "ERR_MALFORMED_REQUEST", $"{request.Method} {path} is not part of the state API");
        }

        if (error is not null)
        {
            await WriteErrorAsync(context, error).ConfigureAwait(false);
        }
    }

    private async Task<StateApiError?> SaveAsync(HttpContext context, string storeName)
    {
        if (StateApiCore.FindStore(_stores, storeName, out IStateStore store) is { } missing)
        {
            return missing;
        }

        (JsonDocument? body, StateApiError? bad) = await ReadJsonAsync(context).ConfigureAwait(false);
        if (bad is not null)
        {
            return bad;
        }

        using (body)
        {
            if (body!.RootElement.ValueKind != JsonValueKind.Array)
            {
                return StateApiError.Malformed("the body must be a JSON array of state items");
            }

            var operations = new List<StateOperation>();
            foreach (JsonElement item in body.RootElement.EnumerateArray())
            {
                if (ParseItem(item, requireValue: true, out StateOperation? operation) is { } itemError)
                {
                    return itemError;
                }

                operations.Add(operation!);
            }

            StateApiError? failed = await StateApiCore.WriteAsync(store, operations, StateApiCore.WriteKind.Save, context.RequestAborted).ConfigureAwait(false);
            if (failed is null)
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
            }

            return failed;
        }
    }

    private async Task<StateApiError?> GetAsync(HttpContext context, string storeName, string key)
    {
        if (StateApiCore.FindStore(_stores, storeName, out IStateStore store) is { } missing)
        {
            return missing;
        }

        if (StateApiCore.Scope(_stores, key, out string scoped) is { } badKey)
        {
            return badKey;
        }

        (StateValue?[]? values, StateApiError? unavailable) = await StateApiCore.ReadAsync(store, [scoped], "ERR_STATE_GET", context.RequestAborted).ConfigureAwait(false);
        if (unavailable is not null)
        {
            return unavailable;
        }

        StateValue? value = values![0];
        HttpResponse response = context.Response;
        if (value is null)
        {
            response.StatusCode = StatusCodes.Status204NoContent;
            return null;
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.Headers.ETag = value.ETag;
        if (value.ExpiresAt is DateTimeOffset expires)
        {
            response.Headers["metadata.ttlExpireTime"] = expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        }

        response.ContentLength = value.Value.Length;
        await response.Body.WriteAsync(value.Value, context.RequestAborted).ConfigureAwait(false);
        return null;
    }

    private async Task<StateApiError?> DeleteAsync(HttpContext context, string storeName, string key)
    {
        if (StateApiCore.FindStore(_stores, storeName, out IStateStore store) is { } missing)
        {
            return missing;
        }

        if (StateApiCore.Scope(_stores, key, out string scoped) is { } badKey)
        {
            return badKey;
        }

        string? concurrencyText = context.Request.Query["concurrency"];
        if (!StateRequestParser.TryParseConcurrency(concurrencyText, out StateConcurrency concurrency))
        {
            return StateApiError.Malformed($"unknown concurrency '{concurrencyText}': expected first-write or last-write");
        }

        string? etag = context.Request.Headers.IfMatch;
        StateApiError? failed = await StateApiCore.WriteAsync(store, [StateOperation.Delete(scoped, etag, concurrency)], StateApiCore.WriteKind.Delete, context.RequestAborted).ConfigureAwait(false);
        if (failed is null)
        {
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        }

        return failed;
    }

    private async Task<StateApiError?> BulkAsync(HttpContext context, string storeName)
    {
        if (StateApiCore.FindStore(_stores, storeName, out IStateStore store) is { } missing)
        {
            return missing;
        }

        (JsonDocument? body, StateApiError? bad) = await ReadJsonAsync(context).ConfigureAwait(false);
        if (bad is not null)
        {
            return bad;
        }

        using (body)
        {
            if (body!.RootElement.ValueKind != JsonValueKind.Object ||
                !body.RootElement.TryGetProperty("keys", out JsonElement keys) || keys.ValueKind != JsonValueKind.Array)
            {
                return StateApiError.Malformed("the body must be {\"keys\": [...]}");
            }

            var texts = new List<string>();
            var scopedKeys = new List<string>();
            foreach (JsonElement key in keys.EnumerateArray())
            {
                if (key.ValueKind != JsonValueKind.String)
                {
                    return StateApiError.Malformed("every key must be a string");
                }

                string text = key.GetString()!;
                if (StateApiCore.Scope(_stores, text, out string scoped) is { } badKey)
                {
                    return badKey;
                }

                texts.Add(text);
                scopedKeys.Add(scoped);
            }

            (StateValue?[]? values, StateApiError? unavailable) = await StateApiCore.ReadAsync(store, scopedKeys, "ERR_STATE_BULK_GET", context.RequestAborted).ConfigureAwait(false);
            if (unavailable is not null)
            {
                return unavailable;
            }

            var found = texts.Select((text, i) => (Key: text, Value: values![i])).ToList();

            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartArray();
                foreach ((string key, StateValue? value) in found)
                {
                    writer.WriteStartObject();
                    writer.WriteString("key", key);
                    if (value is not null)
                    {
                        writer.WritePropertyName("data");
                        WriteData(writer, value.Value);
                        writer.WriteString("etag", value.ETag);
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
            }

            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = buffer.WrittenCount;
            await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
            return null;
        }
    }

    private async Task<StateApiError?> TransactionAsync(HttpContext context, string storeName)
    {
        if (StateApiCore.FindStore(_stores, storeName, out IStateStore store) is { } missing)
        {
            return missing;
        }

        (JsonDocument? body, StateApiError? bad) = await ReadJsonAsync(context).ConfigureAwait(false);
        if (bad is not null)
        {
            return bad;
        }

        using (body)
        {
            if (body!.RootElement.ValueKind != JsonValueKind.Object ||
                !body.RootElement.TryGetProperty("operations", out JsonElement list) || list.ValueKind != JsonValueKind.Array)
            {
                return StateApiError.Malformed("the body must be {\"operations\": [...]}");
            }

            var operations = new List<StateOperation>();
            foreach (JsonElement entry in list.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object ||
                    !entry.TryGetProperty("operation", out JsonElement kind) || kind.ValueKind != JsonValueKind.String ||
                    !entry.TryGetProperty("request", out JsonElement request))
                {
                    return StateApiError.Malformed("every operation needs \"operation\" and \"request\"");
                }

                string name = kind.GetString()!;
                if (name is not ("upsert" or "delete"))
                {
                    return new StateApiError(400, Grpc.Core.StatusCode.Unimplemented, "ERR_NOT_SUPPORTED_STATE_OPERATION",
                        $"operation type {name} not supported");
                }

                if (ParseItem(request, requireValue: name == "upsert", out StateOperation? operation) is { } itemError)
                {
                    return itemError;
                }

                operations.Add(name == "delete" ? operation! with { Value = null, TimeToLive = null } : operation!);
            }

            StateApiError? failed = await StateApiCore.WriteAsync(store, operations, StateApiCore.WriteKind.Transaction, context.RequestAborted).ConfigureAwait(false);
            if (failed is null)
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
            }

            return failed;
        }
    }

    /// <summary>One <c>{key, value, etag?, metadata?, options?}</c> item.</summary>
    private StateApiError? ParseItem(JsonElement item, bool requireValue, out StateOperation? operation)
    {
        operation = null;
        if (item.ValueKind != JsonValueKind.Object)
        {
            return StateApiError.Malformed("every state item must be a JSON object");
        }

        string? key = item.TryGetProperty("key", out JsonElement keyElement) && keyElement.ValueKind == JsonValueKind.String ? keyElement.GetString() : null;
        if (StateApiCore.Scope(_stores, key, out string scoped) is { } badKey)
        {
            return badKey;
        }

        byte[]? value = null;
        if (item.TryGetProperty("value", out JsonElement valueElement))
        {
            value = Encoding.UTF8.GetBytes(valueElement.GetRawText());
        }
        else if (requireValue)
        {
            return StateApiError.Malformed($"state item {key} has no value");
        }

        string? etag = null;
        if (item.TryGetProperty("etag", out JsonElement etagElement) && etagElement.ValueKind != JsonValueKind.Null)
        {
            etag = etagElement.ValueKind == JsonValueKind.String ? etagElement.GetString() : etagElement.GetRawText();
        }

        StateConcurrency concurrency = StateConcurrency.Unspecified;
        if (item.TryGetProperty("options", out JsonElement options) && options.ValueKind == JsonValueKind.Object)
        {
            string? concurrencyText = options.TryGetProperty("concurrency", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            if (!StateRequestParser.TryParseConcurrency(concurrencyText, out concurrency))
            {
                return StateApiError.Malformed($"unknown concurrency '{concurrencyText}': expected first-write or last-write");
            }

            string? consistency = options.TryGetProperty("consistency", out JsonElement k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
            if (!StateRequestParser.IsConsistency(consistency))
            {
                return StateApiError.Malformed($"unknown consistency '{consistency}': expected eventual or strong");
            }
        }

        TimeSpan? ttl = null;
        if (item.TryGetProperty("metadata", out JsonElement metadata) && metadata.ValueKind == JsonValueKind.Object &&
            metadata.TryGetProperty("ttlInSeconds", out JsonElement ttlElement))
        {
            string? ttlText = ttlElement.ValueKind == JsonValueKind.String ? ttlElement.GetString() : ttlElement.GetRawText();
            if (!StateRequestParser.TryParseTtl(ttlText, out ttl, out string? ttlError))
            {
                return StateApiError.Malformed(ttlError!);
            }
        }

        operation = new StateOperation(scoped, value, etag, concurrency, ttl);
        return null;
    }

    /// <summary>Stored bytes as JSON: themselves when they are JSON (what HTTP saves and the SDKs send), else a JSON string.</summary>
    private static void WriteData(Utf8JsonWriter writer, byte[] value)
    {
        var reader = new Utf8JsonReader(value);
        try
        {
            if (JsonDocument.TryParseValue(ref reader, out JsonDocument? document))
            {
                using (document)
                {
                    if (reader.BytesConsumed == value.Length || IsWhitespace(value.AsSpan((int)reader.BytesConsumed)))
                    {
                        writer.WriteRawValue(value, skipInputValidation: true);
                        return;
                    }
                }
            }
        }
        catch (JsonException)
        {
            // not JSON: written as a string below
        }

        writer.WriteStringValue(Encoding.UTF8.GetString(value));
    }

    private static bool IsWhitespace(ReadOnlySpan<byte> bytes) => bytes.IndexOfAnyExcept(" \t\r\n"u8) < 0;

    private static async Task<(JsonDocument? Document, StateApiError? Error)> ReadJsonAsync(HttpContext context)
    {
        HttpRequest request = context.Request;
        if (request.ContentLength > StateApiLimits.MaxRequestBytes)
        {
            return (null, StateApiError.TooLarge());
        }

        var buffer = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                Memory<byte> chunk = buffer.GetMemory(16 * 1024);
                int read = await request.Body.ReadAsync(chunk, context.RequestAborted).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                buffer.Advance(read);
                if (buffer.WrittenCount > StateApiLimits.MaxRequestBytes)
                {
                    return (null, StateApiError.TooLarge());
                }
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, StateApiError.TooLarge());
        }

        if (buffer.WrittenCount == 0)
        {
            return (null, StateApiError.Malformed("the request body is empty"));
        }

        try
        {
            return (JsonDocument.Parse(buffer.WrittenMemory, new JsonDocumentOptions { MaxDepth = 64 }), null);
        }
        catch (JsonException e)
        {
            return (null, StateApiError.Malformed($"the body is not valid JSON: {e.Message}"));
        }
    }

    /// <summary>Writes Dapr's error body.</summary>
    internal static async Task WriteErrorAsync(HttpContext context, StateApiError error)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("errorCode", error.ErrorCode);
            writer.WriteString("message", error.Message);
            writer.WriteEndObject();
        }

        HttpResponse response = context.Response;
        response.StatusCode = error.HttpStatus;
        response.ContentType = "application/json";
        response.ContentLength = buffer.WrittenCount;
        await response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
    }
}
