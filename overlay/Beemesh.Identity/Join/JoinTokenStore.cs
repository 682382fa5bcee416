using Beemesh.Identity.Storage;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Beemesh.Identity.Join;

/// <summary>
/// The join tokens of the node that holds the root key, in <c>STATE/state/tokens.json</c> (mode 0600).
/// Each token is kept as its id, a verifier derived from its secret (<see cref="JoinToken.Verifier"/>;
/// never the secret), its expiry and, once redeemed, when and by which node. Every operation takes an
/// exclusive lock on <c>tokens.json.lock</c>, reads the file, and replaces it durably (temp file,
/// fsync, rename, fsync of the directory), so the agent and a <c>beemesh token create</c> run against
/// the same state directory never lose each other's changes, and a redeemed token stays redeemed
/// across a crash. Expired and used entries are kept a day (so a late attempt is told why) and then
/// dropped.
/// </summary>
public sealed class JoinTokenStore
{
    /// <summary>Default token lifetime (as the brief window a person takes to start the joining node).</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromMinutes(15);

    /// <summary>Longest token lifetime accepted.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromDays(7);

    /// <summary>How long an expired or used token is still reported as such before it is forgotten.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    /// <summary>Path of the store below the state directory.</summary>
    public static readonly string RelativePath = Path.Combine("state", "tokens.json");

    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(10);

    private readonly string _path;
    private readonly string _lockPath;
    private readonly string _rootFingerprint;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();

    /// <summary>A store in <paramref name="stateDirectory"/> for tokens of the root whose fingerprint is <paramref name="rootFingerprint"/>.</summary>
    public JoinTokenStore(string stateDirectory, string rootFingerprint, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        ArgumentException.ThrowIfNullOrEmpty(rootFingerprint);
        _path = Path.Combine(stateDirectory, RelativePath);
        _lockPath = _path + ".lock";
        _rootFingerprint = rootFingerprint;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Null when <paramref name="ttl"/> is an acceptable token lifetime, otherwise why not, in one line.</summary>
    public static string? CheckTtl(TimeSpan ttl) =>
        ttl <= TimeSpan.Zero ? "the token lifetime must be positive"
        : ttl > MaxTtl ? $"the token lifetime must be at most {MaxTtl.TotalDays:0} days"
        : null;

    /// <summary>Creates and records a token valid for <paramref name="ttl"/> (default <see cref="DefaultTtl"/>).</summary>
    public JoinToken Create(TimeSpan? ttl = null)
    {
        TimeSpan lifetime = ttl ?? DefaultTtl;
        if (CheckTtl(lifetime) is string error)
        {
            throw new ArgumentOutOfRangeException(nameof(ttl), error);
        }

        return Update(file =>
        {
            DateTimeOffset now = _time.GetUtcNow();
            JoinToken token;
            do
            {
                token = JoinToken.CreateWithFingerprint(_rootFingerprint);
            }
            while (file.Tokens.Exists(t => t.Id == token.Id));

            file.Tokens.Add(new TokenEntry
            {
                Id = token.Id,
                Verifier = token.Verifier(),
                Created = now,
                Expires = now + lifetime,
            });
            return (token, true);
        });
    }

    /// <summary>Checks <paramref name="proof"/> for token <paramref name="tokenId"/> without redeeming it.</summary>
    public JoinTokenCheck Check(string tokenId, ReadOnlySpan<byte> transcript, ReadOnlySpan<byte> proof)
    {
        byte[] t = transcript.ToArray();
        byte[] p = proof.ToArray();
        return Update(file => (Evaluate(file, tokenId, t, p, out _), false));
    }

    /// <summary>
    /// Checks the proof and, when valid, marks the token used by <paramref name="nodeName"/> (durably)
    /// in the same locked step, so two joiners racing with one token cannot both succeed.
    /// </summary>
    public JoinTokenCheck Redeem(string tokenId, ReadOnlySpan<byte> transcript, ReadOnlySpan<byte> proof, string nodeName)
    {
        byte[] t = transcript.ToArray();
        byte[] p = proof.ToArray();
        return Update(file =>
        {
            JoinTokenCheck result = Evaluate(file, tokenId, t, p, out TokenEntry? entry);
            if (result != JoinTokenCheck.Valid)
            {
                return (result, false);
            }

            entry!.Used = _time.GetUtcNow();
            entry.UsedBy = nodeName;
            return (result, true);
        });
    }

    /// <summary>The ids and expiry of tokens that can still be redeemed.</summary>
    public IReadOnlyList<(string Id, DateTimeOffset Expires)> ListUsable() =>
        Update(file =>
        {
            DateTimeOffset now = _time.GetUtcNow();
            List<(string, DateTimeOffset)> usable = [.. file.Tokens.Where(t => t.Used is null && t.Expires > now).Select(t => (t.Id, t.Expires))];
            return ((IReadOnlyList<(string, DateTimeOffset)>)usable, false);
        });

    private JoinTokenCheck Evaluate(TokenFile file, string tokenId, byte[] transcript, byte[] proof, out TokenEntry? entry)
    {
        entry = file.Tokens.Find(t => t.Id == tokenId);
        if (entry is null)
        {
            return JoinTokenCheck.Unknown;
        }

        // The proof is checked first, so only a holder of the secret learns the token's state.
        if (!JoinProof.Verify(entry.Verifier, transcript, proof))
        {
            return JoinTokenCheck.BadSecret;
        }

        if (entry.Used is not null)
        {
            return JoinTokenCheck.AlreadyUsed;
        }

        return entry.Expires <= _time.GetUtcNow() ? JoinTokenCheck.Expired : JoinTokenCheck.Valid;
    }

    // Runs one read-modify-write under the in-process gate and the cross-process file lock.
    private T Update<T>(Func<TokenFile, (T Result, bool Changed)> change)
    {
        lock (_gate)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!, PrivateFileMode | UnixFileMode.UserExecute);
            using FileStream fileLock = AcquireLock();
            TokenFile file = Read();
            DateTimeOffset now = _time.GetUtcNow();
            int before = file.Tokens.Count;
            file.Tokens.RemoveAll(t => t.Expires + Retention < now);
            (T result, bool changed) = change(file);
            if (changed || file.Tokens.Count != before)
            {
                DurableFile.Write(_path, JsonSerializer.SerializeToUtf8Bytes(file, JoinJsonContext.Default.TokenFile), PrivateFileMode);
            }

            return result;
        }
    }

    private FileStream AcquireLock()
    {
        long deadline = Environment.TickCount64 + (long)LockWait.TotalMilliseconds;
        while (true)
        {
            try
            {
                // On Unix, FileShare.None takes an exclusive advisory lock (flock) on the file.
                return new FileStream(_lockPath, new FileStreamOptions
                {
                    Mode = FileMode.OpenOrCreate,
                    Access = FileAccess.ReadWrite,
                    Share = FileShare.None,
                    UnixCreateMode = PrivateFileMode,
                });
            }
            catch (IOException) when (Environment.TickCount64 < deadline)
            {
                Thread.Sleep(10);
            }
        }
    }

    private TokenFile Read()
    {
        if (!File.Exists(_path))
        {
            return new TokenFile();
        }

        try
        {
            TokenFile? file = JsonSerializer.Deserialize(File.ReadAllBytes(_path), JoinJsonContext.Default.TokenFile);
            if (file is null || file.Version != TokenFile.CurrentVersion)
            {
                throw new InvalidOperationException($"{_path} has an unknown format; move it aside to start with no tokens.");
            }

            file.Tokens.RemoveAll(t => t.Id is null || t.Verifier is null);
            return file;
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"{_path} is not valid JSON ({e.Message}); move it aside to start with no tokens.", e);
        }
    }

    /// <summary>The stored file (version 1).</summary>
    internal sealed class TokenFile
    {
        public const int CurrentVersion = 1;

        [JsonPropertyName("version")]
        public int Version { get; set; } = CurrentVersion;

        [JsonPropertyName("tokens")]
        public List<TokenEntry> Tokens { get; set; } = [];
    }

    /// <summary>One token as stored.</summary>
    internal sealed class TokenEntry
    {
        [JsonPropertyName("id")]
        public string Id { get; set; } = "";

        [JsonPropertyName("verifier")]
        public byte[] Verifier { get; set; } = [];

        [JsonPropertyName("created")]
        public DateTimeOffset Created { get; set; }

        [JsonPropertyName("expires")]
        public DateTimeOffset Expires { get; set; }

        [JsonPropertyName("used")]
        public DateTimeOffset? Used { get; set; }

        [JsonPropertyName("usedBy")]
        public string? UsedBy { get; set; }
    }
}
