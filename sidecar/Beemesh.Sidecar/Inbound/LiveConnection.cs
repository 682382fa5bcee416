using System.Security.Cryptography.X509Certificates;
using Beemesh.Authorization;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Inbound;

/// <summary>
/// One tunnelled inbound connection while it lives: who called, what for, which rule let it in,
/// and the byte counts. <see cref="Revoke"/> is first-reason-wins and runs the abort action once.
/// </summary>
public sealed class LiveConnection
{
    private readonly Action _abort;
    private long _bytesToWorkload;
    private long _bytesFromWorkload;
    private int _revoked;
    private long _identityCheckTicks;
    private MeshCounters? _counters;

    /// <summary>Creates a record; <paramref name="abort"/> resets the HTTP/2 stream and the guest socket.</summary>
    public LiveConnection(SpiffeId caller, X509Certificate2 callerCertificate, AuthorizationRequest request, AuthorizationDecision decision, DateTimeOffset startedAt, Action abort)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(callerCertificate);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(abort);
        Caller = caller;
        CallerCertificate = callerCertificate;
        CallerNotAfter = new DateTimeOffset(callerCertificate.NotAfter.ToUniversalTime());
        CallerNotBefore = new DateTimeOffset(callerCertificate.NotBefore.ToUniversalTime());
        _identityCheckTicks = CallerNotAfter.UtcTicks;
        Request = request;
        Decision = decision;
        StartedAt = startedAt;
        _abort = abort;
    }

    /// <summary>The caller's SPIFFE ID, from its TLS certificate.</summary>
    public SpiffeId Caller { get; }

    /// <summary>The caller's SVID as presented on the tunnel.</summary>
    public X509Certificate2 CallerCertificate { get; }

    /// <summary>
    /// When the SVID the caller presented at the tunnel handshake expires. The connection is not cut
    /// then by itself: the registry checks that the caller is still a workload of the mesh (see
    /// <see cref="IdentityCheckAt"/>).
    /// </summary>
    public DateTimeOffset CallerNotAfter { get; }

    /// <summary>When the caller's handshake SVID became valid.</summary>
    public DateTimeOffset CallerNotBefore { get; }

    /// <summary>
    /// When the registry next confirms that the caller's identity is still current: first the
    /// handshake SVID's NotAfter, then one SVID lifetime later each time it was confirmed.
    /// </summary>
    public DateTimeOffset IdentityCheckAt
    {
        get => new(Interlocked.Read(ref _identityCheckTicks), TimeSpan.Zero);
        internal set => Interlocked.Exchange(ref _identityCheckTicks, value.UtcTicks);
    }

    /// <summary>How many times the connection was kept past an identity check (its handshake SVID had expired).</summary>
    public int IdentityRenewals { get; internal set; }

    /// <summary>Sidecar-wide counters the byte counts also go to (set when the registry tracks the connection).</summary>
    internal MeshCounters? Counters
    {
        get => Volatile.Read(ref _counters);
        set => Volatile.Write(ref _counters, value);
    }

    /// <summary>The request the connection was authorized with (re-evaluated on every change).</summary>
    public AuthorizationRequest Request { get; }

    /// <summary>The latest decision that allowed the connection.</summary>
    public AuthorizationDecision Decision { get; internal set; }

    /// <summary>When the connection was accepted.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>Bytes carried from the caller into the workload.</summary>
    public long BytesToWorkload => Interlocked.Read(ref _bytesToWorkload);

    /// <summary>Bytes carried from the workload to the caller.</summary>
    public long BytesFromWorkload => Interlocked.Read(ref _bytesFromWorkload);

    /// <summary>True once revoked.</summary>
    public bool IsRevoked => Volatile.Read(ref _revoked) != 0;

    /// <summary>Counts <paramref name="bytes"/> in one direction.</summary>
    public void Count(bool toWorkload, int bytes)
    {
        Counters?.CountBytes(toWorkload, bytes);
        if (toWorkload)
        {
            Interlocked.Add(ref _bytesToWorkload, bytes);
        }
        else
        {
            Interlocked.Add(ref _bytesFromWorkload, bytes);
        }
    }

    /// <summary>Aborts the connection; returns false when it was already revoked.</summary>
    public bool Revoke()
    {
        if (Interlocked.Exchange(ref _revoked, 1) != 0)
        {
            return false;
        }

        _abort();
        return true;
    }
}
