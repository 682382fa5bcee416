using System.Globalization;
using System.Text;

namespace Beemesh.Linearizability;

/// <summary>
/// A client's history as it runs, safe against the client being killed mid-operation: before a
/// request is sent its operation is written and flushed with outcome unknown (<c>call N {...}</c>),
/// and once its answer arrives the completed operation follows (<c>done N {...}</c>); each JSON part
/// is a <see cref="HistoryFile"/> line. <see cref="Read"/> keeps, for every N, the completed
/// operation, or the unknown one when the client died before the answer, so an operation cut short by
/// a kill is in the history as "may or may not have taken effect", never silently missing.
/// </summary>
public sealed class ClientJournal : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly Lock _lock = new();
    private long _next;

    /// <summary>Appends to the journal at <paramref name="path"/> (created if absent).</summary>
    public ClientJournal(string path)
    {
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false));
    }

    /// <summary>
    /// Records that <paramref name="operation"/> (outcome <see cref="OperationOutcome.Unknown"/>) is about
    /// to be sent; returns its number for <see cref="Done"/>. The line is on disk before this returns.
    /// </summary>
    public long Call(KvOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        if (operation.Outcome != OperationOutcome.Unknown)
        {
            throw new ArgumentException($"operation {operation}: a call is recorded with an unknown outcome", nameof(operation));
        }

        operation.Validate();
        lock (_lock)
        {
            long number = ++_next;
            WriteLine("call", number, operation);
            return number;
        }
    }

    /// <summary>Records how call <paramref name="number"/> ended.</summary>
    public void Done(long number, KvOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        operation.Validate();
        lock (_lock)
        {
            WriteLine("done", number, operation);
        }
    }

    /// <summary>
    /// Reads a journal: one operation per call, the completed one where there is one. A last line cut
    /// short (the writer was killed while writing it) is skipped; any other bad line is a
    /// <see cref="FormatException"/> naming it.
    /// </summary>
    public static List<KvOperation> Read(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var calls = new SortedDictionary<long, KvOperation>();
        var done = new Dictionary<long, KvOperation>();
        int line = 0;
        string? text = reader.ReadLine();
        while (text is not null)
        {
            line++;
            string? next = reader.ReadLine();
            if (!string.IsNullOrWhiteSpace(text))
            {
                try
                {
                    (string kind, long number, KvOperation operation) = ParseLine(text, line);
                    if (kind == "call")
                    {
                        if (!calls.TryAdd(number, operation))
                        {
                            throw new FormatException($"line {line}: call {number} is recorded twice");
                        }
                    }
                    else if (!done.TryAdd(number, operation))
                    {
                        throw new FormatException($"line {line}: done {number} is recorded twice");
                    }
                }
                catch (FormatException) when (next is null)
                {
                    // The writer died in the middle of its last line.
                }
            }

            text = next;
        }

        var operations = new List<KvOperation>(calls.Count);
        foreach ((long number, KvOperation call) in calls)
        {
            if (done.Remove(number, out KvOperation? completed))
            {
                if (completed.Key != call.Key || completed.Kind != call.Kind || completed.CallTime != call.CallTime)
                {
                    throw new FormatException($"done {number} ({completed}) is not the operation of call {number} ({call})");
                }

                operations.Add(completed);
            }
            else
            {
                operations.Add(call);
            }
        }

        if (done.Count > 0)
        {
            throw new FormatException($"done {done.Keys.First()} has no call");
        }

        return operations;
    }

    /// <summary>Reads the journal in the file at <paramref name="path"/>.</summary>
    public static List<KvOperation> ReadFile(string path)
    {
        using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite), Encoding.UTF8);
        return Read(reader);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            _writer.Dispose();
        }
    }

    private void WriteLine(string kind, long number, KvOperation operation)
    {
        _writer.Write(kind);
        _writer.Write(' ');
        _writer.Write(number.ToString(CultureInfo.InvariantCulture));
        _writer.Write(' ');
        _writer.Write(HistoryFile.FormatLine(operation));
        _writer.Write('\n');
        _writer.Flush();
    }

    private static (string Kind, long Number, KvOperation Operation) ParseLine(string text, int line)
    {
        string[] parts = text.Split(' ', 3);
        if (parts.Length != 3 || parts[0] is not ("call" or "done")
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long number) || number < 1)
        {
            throw new FormatException($"line {line}: not \"call N {{...}}\" or \"done N {{...}}\"");
        }

        KvOperation operation = HistoryFile.ParseLine(parts[2], line);
        if (parts[0] == "call" && operation.Outcome != OperationOutcome.Unknown)
        {
            throw new FormatException($"line {line}: a call's outcome is unknown");
        }

        return (parts[0], number, operation);
    }
}
