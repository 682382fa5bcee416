using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Join;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// The agent's node port (<c>--listen</c>, default port <see cref="DefaultPort"/>): one TCP listener
/// whose TLS 1.3 connections are told apart by ALPN. <c>beemesh-join/1</c> goes to the
/// <see cref="JoinServer"/> (only on the node holding the root), and so does <c>beemesh-renew/1</c>
/// (node certificate renewal); <c>beemesh-overlay/1</c> goes to the
/// overlay link handler. The node presents its node SVID; a client certificate is asked for but
/// checked by the handler of the negotiated protocol (a joiner has none yet). A connection that fails
/// its handshake or negotiates neither protocol costs only itself and is counted.
/// </summary>
public sealed class NodeListener : IAsyncDisposable
{
    /// <summary>Default port of the node port (joins and overlay links); 15008 is the tunnel port.</summary>
    public const int DefaultPort = 15010;

    /// <summary>ALPN of overlay links.</summary>
    public static readonly SslApplicationProtocol OverlayProtocol = new("beemesh-overlay/1");

    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    private readonly TcpListener _listener;
    private readonly Func<SslStreamCertificateContext> _certificate;
    private readonly JoinServer? _joinServer;
    private readonly Func<SslStream, CancellationToken, Task>? _overlay;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private long _refused;

    /// <summary>
    /// Listens on <paramref name="endpoint"/>; <paramref name="certificate"/> gives the node SVID context
    /// to present (asked per connection so renewals take effect).
    /// </summary>
    public NodeListener(IPEndPoint endpoint, Func<SslStreamCertificateContext> certificate, JoinServer? joinServer, Func<SslStream, CancellationToken, Task>? overlay, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(certificate);
        _certificate = certificate;
        _joinServer = joinServer;
        _overlay = overlay;
        _logger = logger ?? NullLogger.Instance;
        _listener = new TcpListener(endpoint);
        try
        {
            _listener.Start(512);
        }
        catch (SocketException e)
        {
            throw new InvalidOperationException($"cannot listen on {endpoint}: {e.Message}", e);
        }

        LocalEndPoint = (IPEndPoint)_listener.LocalEndpoint;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The bound address (the port is filled in when 0 was asked).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Connections refused before reaching a handler (handshake failure, no known ALPN).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            socket.NoDelay = true;
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        await using (tls.ConfigureAwait(false))
        {
            try
            {
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    timeout.CancelAfter(HandshakeTimeout);
                    List<SslApplicationProtocol> protocols = [];
                    if (_overlay is not null)
                    {
                        protocols.Add(OverlayProtocol);
                    }

                    if (_joinServer is not null)
                    {
                        protocols.Add(JoinProtocol.ApplicationProtocol);
                        protocols.Add(JoinProtocol.RenewalProtocol);
                    }

                    await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                    {
                        EnabledSslProtocols = SslProtocols.Tls13,
                        ApplicationProtocols = protocols,
                        ClientCertificateRequired = true,
                        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                        ServerCertificateContext = _certificate(),
                        // The handler of the negotiated protocol checks the peer: overlay links need a
                        // node SVID, a joiner has no certificate yet.
                        RemoteCertificateValidationCallback = static (_, _, _, _) => true,
                    }, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or SocketException)
            {
                Interlocked.Increment(ref _refused);
                NodeListenerLog.HandshakeFailed(_logger, socket.RemoteEndPoint?.ToString() ?? "?", e.Message);
                return;
            }

            try
            {
                if (_joinServer is not null
                    && (tls.NegotiatedApplicationProtocol == JoinProtocol.ApplicationProtocol || tls.NegotiatedApplicationProtocol == JoinProtocol.RenewalProtocol))
                {
                    await _joinServer.HandleAsync(tls, _stop.Token).ConfigureAwait(false);
                }
                else if (_overlay is not null && tls.NegotiatedApplicationProtocol == OverlayProtocol)
                {
                    await _overlay(tls, _stop.Token).ConfigureAwait(false);
                }
                else
                {
                    Interlocked.Increment(ref _refused);
                    NodeListenerLog.HandshakeFailed(_logger, socket.RemoteEndPoint?.ToString() ?? "?", "no known ALPN protocol");
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
            {
                // The peer's connection ends here; the handlers count their own refusals.
            }
        }
    }

    /// <summary>Stops accepting and waits for the accept loop to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _acceptLoop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
