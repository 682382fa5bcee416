using System.Diagnostics;
using System.Text;
using Beemesh.LoadTests.Bench;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// A process the mesh bench started (agent, sidecar with its guest, haproxy), with its output kept
/// in memory and a log file. Stopping kills the whole tree: <c>beemesh run</c> forwards SIGTERM to
/// its guest and waits for it, and some guests (iperf3 -s) do not exit on it promptly.
/// </summary>
internal sealed class MeshProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StreamWriter _log;
    private readonly TaskCompletionSource _marker = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _markerText;
    private readonly IReadOnlyList<string> _watched;
    private readonly Dictionary<string, long> _seen = [];

    private MeshProcess(IReadOnlyList<string> argv, string logPath, string? marker, IReadOnlyList<string>? watch)
    {
        _markerText = marker;
        _watched = watch ?? [];
        _log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        ProcessStartInfo info = ProcessRunner.StartInfo(argv);
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => Line(e.Data);
        _process.ErrorDataReceived += (_, e) => Line(e.Data);
        _process.Start();
        ChildProcesses.Track(_process);
        _process.StandardInput.Close();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Completes when a line containing the marker text appears.</summary>
    public Task Marker => _marker.Task;

    /// <summary><see cref="Stopwatch.GetTimestamp"/> when the marker line was read; 0 before.</summary>
    public long MarkerTimestamp { get; private set; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <paramref name="argv"/>; <paramref name="watch"/> lists texts whose first line is timestamped (<see cref="SeenAt"/>).</summary>
    public static MeshProcess Start(IReadOnlyList<string> argv, string logPath, CommandLog log, string scope, string? marker = null, IReadOnlyList<string>? watch = null)
    {
        log.Add(scope, argv);
        return new MeshProcess(argv, logPath, marker, watch);
    }

    /// <summary><see cref="Stopwatch.GetTimestamp"/> when a line containing <paramref name="text"/> (one of the watched texts) was first read, or null.</summary>
    public long? SeenAt(string text)
    {
        lock (_output)
        {
            return _seen.TryGetValue(text, out long at) ? at : null;
        }
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken) => _process.WaitForExitAsync(cancellationToken);

    public string Tail(int lines = 4)
    {
        string[] all = Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join(" | ", all.Skip(Math.Max(0, all.Length - lines)));
    }

    private void Line(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            _log.WriteLine(line);
            foreach (string text in _watched)
            {
                if (!_seen.ContainsKey(text) && line.Contains(text, StringComparison.Ordinal))
                {
                    _seen[text] = Stopwatch.GetTimestamp();
                }
            }
        }

        if (_markerText is not null && MarkerTimestamp == 0 && line.Contains(_markerText, StringComparison.Ordinal))
        {
            MarkerTimestamp = Stopwatch.GetTimestamp();
            _marker.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                ProcessTree.Kill(_process);
            }

            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
        }
        catch (OperationCanceledException)
        {
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }

        ChildProcesses.Forget(_process);
        _process.Dispose();
        lock (_output)
        {
            _log.Dispose();
        }
    }
}
