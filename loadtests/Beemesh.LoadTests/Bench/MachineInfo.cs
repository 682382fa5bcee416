using System.Globalization;

namespace Beemesh.LoadTests.Bench;

/// <summary>Facts about the machine that make numbers comparable across reports.</summary>
internal sealed record MachineInfo(int Processors, string Cpu, string Kernel, string Date, string DotNet)
{
    public static MachineInfo Collect()
    {
        string cpu = "unknown";
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    cpu = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                    break;
                }
            }
        }
        catch (IOException)
        {
        }

        string kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : Environment.OSVersion.VersionString;
        return new MachineInfo(
            Environment.ProcessorCount,
            cpu,
            kernel,
            DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            Environment.Version.ToString());
    }
}
