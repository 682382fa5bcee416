using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Beemesh.Linearizability;

/// <summary>
/// Histories as JSON lines: one completed operation per line, in any order; blank lines are skipped.
/// <code>
/// {"process":1,"key":"k","op":"write","value":"v1","call":100,"return":180,"result":"ok"}
/// {"process":2,"key":"k","op":"read","call":150,"return":190,"result":"ok","value":"v1","etag":"3"}
/// {"process":2,"key":"k","op":"cas","expect":"3","value":"v2","call":200,"return":260,"result":"mismatch"}
/// {"process":3,"key":"k","op":"delete","call":210,"result":"unknown"}
/// </code>
/// Fields: <c>key</c> (string), <c>op</c> (<c>read</c>, <c>write</c>, <c>cas</c>, <c>create</c>,
/// <c>delete</c>), <c>call</c> and <c>return</c> (integers on one monotonic clock all clients share;
/// <c>return</c> may be left out when the result is unknown), <c>result</c> (<c>ok</c>,
/// <c>mismatch</c>, <c>fail</c>, <c>unknown</c>), <c>value</c> (string: the value written, or the
/// value a read returned, null or absent when the read found nothing), <c>expect</c> (the ETag a
/// <c>cas</c> requires, or a <c>delete</c>'s If-Match), <c>etag</c> (the ETag returned, if any),
/// <c>process</c> (integer, for diagnostics). Any other field, a wrong type or a missing field is
/// a <see cref="FormatException"/> naming the line.
/// </summary>
public static class HistoryFile
{
    private static readonly HashSet<string> Fields = new(StringComparer.Ordinal) { "key", "op", "call", "return", "result", "value", "expect", "etag", "process" };

    /// <summary>Reads the history in the file at <paramref name="path"/>.</summary>
    public static List<KvOperation> ReadFile(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        return Read(reader);
    }

    /// <summary>Reads a history; each operation's <see cref="KvOperation.Id"/> is its line number.</summary>
    public static List<KvOperation> Read(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var operations = new List<KvOperation>();
        int number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            operations.Add(ParseLine(line, number));
        }

        return operations;
    }

    /// <summary>Parses one line (<paramref name="number"/> becomes the operation's id and is named in errors).</summary>
    public static KvOperation ParseLine(string line, long number)
    {
        ArgumentNullException.ThrowIfNull(line);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new FormatException($"line {number}: not JSON: {e.Message}", e);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"line {number}: not a JSON object");
            }

            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (!Fields.Contains(property.Name))
                {
                    throw new FormatException($"line {number}: unknown field \"{property.Name}\"");
                }
            }

            OperationKind kind = String(root, "op", number, required: true) switch
            {
                "read" => OperationKind.Read,
                "write" => OperationKind.Write,
                "cas" => OperationKind.CompareAndSet,
                "create" => OperationKind.Create,
                "delete" => OperationKind.Delete,
                var other => throw new FormatException($"line {number}: op \"{other}\" is not read, write, cas, create or delete"),
            };
            OperationOutcome outcome = String(root, "result", number, required: true) switch
            {
                "ok" => OperationOutcome.Ok,
                "mismatch" => OperationOutcome.Mismatch,
                "fail" => OperationOutcome.Failed,
                "unknown" => OperationOutcome.Unknown,
                var other => throw new FormatException($"line {number}: result \"{other}\" is not ok, mismatch, fail or unknown"),
            };
            long call = Integer(root, "call", number) ?? throw new FormatException($"line {number}: \"call\" is missing");
            long? returned = Integer(root, "return", number);
            if (returned is null && outcome != OperationOutcome.Unknown)
            {
                throw new FormatException($"line {number}: \"return\" is missing (only an unknown result may leave it out)");
            }

            var operation = new KvOperation
            {
                Key = String(root, "key", number, required: true)!,
                Kind = kind,
                CallTime = call,
                ReturnTime = returned ?? long.MaxValue,
                Outcome = outcome,
                Value = String(root, "value", number, required: false),
                ExpectedEtag = String(root, "expect", number, required: false),
                ResultEtag = String(root, "etag", number, required: false),
                Process = (int)(Integer(root, "process", number, int.MinValue, int.MaxValue) ?? 0),
                Id = number,
            };
            try
            {
                operation.Validate();
            }
            catch (ArgumentException e)
            {
                throw new FormatException($"line {number}: {e.Message}", e);
            }

            return operation;
        }
    }

    /// <summary>Writes <paramref name="operations"/> as JSON lines that <see cref="Read"/> reads back.</summary>
    public static void Write(TextWriter writer, IEnumerable<KvOperation> operations)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(operations);
        foreach (KvOperation operation in operations)
        {
            writer.Write(FormatLine(operation));
            writer.Write('\n');
        }
    }

    /// <summary>Writes <paramref name="operations"/> to the file at <paramref name="path"/>.</summary>
    public static void WriteFile(string path, IEnumerable<KvOperation> operations)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        Write(writer, operations);
    }

    /// <summary>One operation as one JSON line (without the newline).</summary>
    public static string FormatLine(KvOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("process", operation.Process);
            json.WriteString("key", operation.Key);
            json.WriteString("op", operation.Kind switch
            {
                OperationKind.Read => "read",
                OperationKind.Write => "write",
                OperationKind.CompareAndSet => "cas",
                OperationKind.Create => "create",
                OperationKind.Delete => "delete",
                _ => throw new ArgumentException($"operation {operation}: unknown kind", nameof(operation)),
            });
            if (operation.ExpectedEtag is not null)
            {
                json.WriteString("expect", operation.ExpectedEtag);
            }

            if (operation.Value is not null)
            {
                json.WriteString("value", operation.Value);
            }

            json.WriteNumber("call", operation.CallTime);
            if (operation.Outcome != OperationOutcome.Unknown)
            {
                json.WriteNumber("return", operation.ReturnTime);
            }

            json.WriteString("result", operation.Outcome switch
            {
                OperationOutcome.Ok => "ok",
                OperationOutcome.Mismatch => "mismatch",
                OperationOutcome.Failed => "fail",
                OperationOutcome.Unknown => "unknown",
                _ => throw new ArgumentException($"operation {operation}: unknown outcome", nameof(operation)),
            });
            if (operation.ResultEtag is not null)
            {
                json.WriteString("etag", operation.ResultEtag);
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string? String(JsonElement root, string name, long number, bool required)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return required ? throw new FormatException($"line {number}: \"{name}\" is missing") : null;
        }

        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw new FormatException($"line {number}: \"{name}\" is not a string");
    }

    private static long? Integer(JsonElement root, string name, long number, long min = long.MinValue, long max = long.MaxValue)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long result) || result < min || result > max)
        {
            throw new FormatException($"line {number}: \"{name}\" is not an integer in range");
        }

        return result;
    }
}
