using System.Globalization;

namespace Beemesh.Slirp.Sandbox;

/// <summary>
/// What <c>beemesh-nsenter sandbox</c> hands to the program it executes inside the sandbox, in the
/// environment variable <see cref="VariableName"/> as <c>tap=FD vnet=0|1 offload=0|1 pivot=FD</c>:
/// the tap it opened, and the socket on which the program asks for the root to be moved once it is
/// set up.
/// </summary>
/// <param name="TapFd">The inherited tap fd.</param>
/// <param name="VnetHeader">The tap was opened with IFF_VNET_HDR.</param>
/// <param name="Offload">The kernel accepted TUNSETOFFLOAD.</param>
/// <param name="PivotFd">The inherited socket to the pivot helper.</param>
public sealed record SandboxHandoff(int TapFd, bool VnetHeader, bool Offload, int PivotFd)
{
    /// <summary>The environment variable the helper sets before it executes the program.</summary>
    public const string VariableName = "BEEMESH_SLIRP_SANDBOX";

    /// <summary>Parses the variable's value; false (never an exception) for anything malformed.</summary>
    /// <param name="text">The value, e.g. <c>tap=5 vnet=1 offload=1 pivot=6</c>.</param>
    /// <param name="handoff">The parsed hand-off when true is returned.</param>
    /// <returns>True when every field is present once and well formed.</returns>
    public static bool TryParse(string? text, out SandboxHandoff? handoff)
    {
        handoff = null;
        if (text is null)
        {
            return false;
        }

        int tap = -1, vnet = -1, offload = -1, pivot = -1;
        foreach (string field in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = field.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !int.TryParse(field.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            {
                return false;
            }

            ref int slot = ref tap;
            switch (field[..eq])
            {
                case "tap": slot = ref tap; break;
                case "vnet": slot = ref vnet; break;
                case "offload": slot = ref offload; break;
                case "pivot": slot = ref pivot; break;
                default: return false;
            }

            if (slot != -1)
            {
                return false;
            }

            slot = value;
        }

        if (tap < 0 || pivot < 0 || vnet is not (0 or 1) || offload is not (0 or 1) || tap == pivot)
        {
            return false;
        }

        handoff = new SandboxHandoff(tap, vnet == 1, offload == 1, pivot);
        return true;
    }
}
