namespace Beemesh.Overlay;

/// <summary>A message the node wants sent; the host drains them from <see cref="OverlayNode.Outbox"/>.</summary>
/// <param name="To">The destination peer.</param>
/// <param name="Message">What to send.</param>
public readonly record struct OutboundMessage(PeerAddress To, OverlayMessage Message);
