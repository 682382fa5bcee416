namespace Beemesh.Netstack.Wire;

/// <summary>One SACK block (RFC 2018): bytes [Left, Right) in sequence space were received.</summary>
public readonly record struct SackBlock(uint Left, uint Right);
