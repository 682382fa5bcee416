using System.Globalization;

namespace Beemesh.Linearizability;

/// <summary>
/// One operation a client performed on one key, with the times it was called and returned (any
/// monotonic clock all clients share, e.g. <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> on one
/// machine) and what it returned. Build one with the static factories; <see cref="Validate"/> says
/// what is inconsistent in one built by hand.
/// </summary>
public sealed record KvOperation
{
    /// <summary>The key the operation touched; the checker checks each key on its own.</summary>
    public required string Key { get; init; }

    /// <summary>What was asked.</summary>
    public required OperationKind Kind { get; init; }

    /// <summary>When the client sent the request.</summary>
    public required long CallTime { get; init; }

    /// <summary>When the client got the answer (ignored when <see cref="Outcome"/> is <see cref="OperationOutcome.Unknown"/>).</summary>
    public required long ReturnTime { get; init; }

    /// <summary>How the operation ended.</summary>
    public required OperationOutcome Outcome { get; init; }

    /// <summary>
    /// For writes, compare-and-sets and creates, the value written. For a read that succeeded, the
    /// value read, or null when the key was absent. Null for deletes.
    /// </summary>
    public string? Value { get; init; }

    /// <summary>
    /// The ETag a compare-and-set requires (never null for one); the If-Match ETag of a conditional
    /// delete (null: an unconditional delete).
    /// </summary>
    public string? ExpectedEtag { get; init; }

    /// <summary>
    /// The ETag the store returned, when the API returns one: for a read that found the key, the key's
    /// ETag; for a write, compare-and-set or create that succeeded, the key's new ETag. Null when not
    /// recorded; then it is not checked.
    /// </summary>
    public string? ResultEtag { get; init; }

    /// <summary>The client that ran the operation (for diagnostics only).</summary>
    public int Process { get; init; }

    /// <summary>A caller-chosen identifier (for diagnostics only), e.g. the line of a history file.</summary>
    public long Id { get; init; }

    /// <summary>A read that found <paramref name="value"/> (null: the key was absent), with the ETag it returned, if recorded.</summary>
    public static KvOperation Read(string key, long call, long @return, string? value, string? etag = null, int process = 0) => new()
    {
        Key = key, Kind = OperationKind.Read, CallTime = call, ReturnTime = @return, Outcome = OperationOutcome.Ok,
        Value = value, ResultEtag = value is null ? null : etag, Process = process,
    };

    /// <summary>An unconditional write of <paramref name="value"/>.</summary>
    public static KvOperation Write(string key, long call, long @return, string value, OperationOutcome outcome = OperationOutcome.Ok, string? etag = null, int process = 0) => new()
    {
        Key = key, Kind = OperationKind.Write, CallTime = call, ReturnTime = @return, Outcome = outcome, Value = value,
        ResultEtag = etag, Process = process,
    };

    /// <summary>A write of <paramref name="value"/> on condition that the key's ETag is <paramref name="expected"/>.</summary>
    public static KvOperation CompareAndSet(string key, long call, long @return, string expected, string value, OperationOutcome outcome, string? etag = null, int process = 0) => new()
    {
        Key = key, Kind = OperationKind.CompareAndSet, CallTime = call, ReturnTime = @return, Outcome = outcome, Value = value,
        ExpectedEtag = expected, ResultEtag = etag, Process = process,
    };

    /// <summary>A write of <paramref name="value"/> on condition that the key is absent.</summary>
    public static KvOperation Create(string key, long call, long @return, string value, OperationOutcome outcome, string? etag = null, int process = 0) => new()
    {
        Key = key, Kind = OperationKind.Create, CallTime = call, ReturnTime = @return, Outcome = outcome, Value = value,
        ResultEtag = etag, Process = process,
    };

    /// <summary>A delete, conditional on <paramref name="expected"/> when it is not null.</summary>
    public static KvOperation Delete(string key, long call, long @return, OperationOutcome outcome = OperationOutcome.Ok, string? expected = null, int process = 0) => new()
    {
        Key = key, Kind = OperationKind.Delete, CallTime = call, ReturnTime = @return, Outcome = outcome,
        ExpectedEtag = expected, Process = process,
    };

    /// <summary>
    /// Throws <see cref="ArgumentException"/> naming what is inconsistent: a return before the call, a
    /// missing value or ETag the kind needs, a mismatch outcome for an operation without a condition.
    /// </summary>
    public void Validate()
    {
        string? problem = Kind switch
        {
            _ when !Enum.IsDefined(Kind) => "unknown operation kind",
            _ when !Enum.IsDefined(Outcome) => "unknown outcome",
            _ when Outcome != OperationOutcome.Unknown && ReturnTime < CallTime => "returns before it is called",
            OperationKind.Read when Outcome == OperationOutcome.Mismatch => "a read cannot end in a mismatch",
            OperationKind.Read when ExpectedEtag is not null => "a read has no expected ETag",
            OperationKind.Read when Value is null && ResultEtag is not null => "a read that found nothing returned an ETag",
            OperationKind.Write or OperationKind.CompareAndSet or OperationKind.Create when Value is null => "a write needs a value",
            OperationKind.Write when Outcome == OperationOutcome.Mismatch => "an unconditional write cannot end in a mismatch",
            OperationKind.Write or OperationKind.Create when ExpectedEtag is not null => "only compare-and-set and delete take an expected ETag",
            OperationKind.CompareAndSet when ExpectedEtag is null => "a compare-and-set needs an expected ETag",
            OperationKind.Delete when Value is not null => "a delete has no value",
            OperationKind.Delete when ResultEtag is not null => "a delete returns no ETag",
            OperationKind.Delete when ExpectedEtag is null && Outcome == OperationOutcome.Mismatch => "an unconditional delete cannot end in a mismatch",
            _ when Outcome != OperationOutcome.Ok && ResultEtag is not null => "only a successful operation returns an ETag",
            _ => null,
        };
        if (problem is not null)
        {
            throw new ArgumentException($"operation {this}: {problem}");
        }
    }

    /// <summary>A one-line description, e.g. <c>#3 p1 cas(k, 7→"v2")=ok [10, 20]</c>.</summary>
    public override string ToString()
    {
        string args = Kind switch
        {
            OperationKind.Read => Key,
            OperationKind.Write or OperationKind.Create => $"{Key}, {Quote(Value)}",
            OperationKind.CompareAndSet => $"{Key}, {ExpectedEtag}→{Quote(Value)}",
            _ => ExpectedEtag is null ? Key : $"{Key}, if {ExpectedEtag}",
        };
        string result = Outcome switch
        {
            OperationOutcome.Ok when Kind == OperationKind.Read => Value is null ? "absent" : Quote(Value) + (ResultEtag is null ? "" : "@" + ResultEtag),
            OperationOutcome.Ok => ResultEtag is null ? "ok" : "ok@" + ResultEtag,
            _ => Outcome.ToString().ToLowerInvariant(),
        };
        string returned = Outcome == OperationOutcome.Unknown ? "?" : ReturnTime.ToString(CultureInfo.InvariantCulture);
        string name = Kind switch
        {
            OperationKind.CompareAndSet => "cas",
            _ => Kind.ToString().ToLowerInvariant(),
        };
        return $"#{Id} p{Process} {name}({args})={result} [{CallTime.ToString(CultureInfo.InvariantCulture)}, {returned}]";
    }

    private static string Quote(string? value) => value is null ? "null" : "\"" + value + "\"";
}
