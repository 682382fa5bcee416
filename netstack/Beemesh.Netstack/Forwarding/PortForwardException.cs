namespace Beemesh.Netstack.Forwarding;

/// <summary>A forwarding rule could not be installed (for example the host port is taken).</summary>
public sealed class PortForwardException(string message, Exception? inner = null) : Exception(message, inner);
