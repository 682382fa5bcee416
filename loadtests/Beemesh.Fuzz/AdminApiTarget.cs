using System.Globalization;
using System.Text;
using System.Text.Json;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Policies;
using Beemesh.Agent.Workloads;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Spiffe.Processes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Fuzz;

/// <summary>
/// The agent's admin API request handling (<c>AdminApi.HandleAsync</c>, the code the admin socket
/// runs for every request) without a socket: one input is a sequence of requests separated by NUL
/// bytes, each "METHOD PATH[?QUERY]" on its first line and the body after it. Every input gets a fresh
/// agent state (workload registry, policy store, attestor) sharing one CA, so a sequence can register,
/// resolve, apply and delete. Processes come from a fake <c>/proc</c> in which the caller (this process)
/// has three children the requests may register, beside a process that is not its own. Every request must end in a status the API documents,
/// an error status with a one-line JSON error; an exception escaping the handler is a finding.
/// </summary>
public sealed class AdminApiTarget : FuzzTarget, IDisposable
{
    /// <summary>Pids of the fake children of the caller, registrable as workloads.</summary>
    public static readonly int[] ChildPids = [4_000_001, 4_000_002, 4_000_003];

    /// <summary>A fake process that is not the caller's descendant (registering it is forbidden).</summary>
    public const int StrangerPid = 4_000_009;

    private static readonly int[] Documented2xx4xx = [200, 201, 204, 400, 403, 404, 409, 413];
    private readonly string _root = Directory.CreateTempSubdirectory("beemesh-fuzz-admin-").FullName;
    private readonly string _procRoot;
    private readonly CertificateAuthority _authority;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly AgentMetrics _metrics = new();
    private readonly CallerProcess _caller;
    private readonly Dictionary<string, long> _outcomes = new(StringComparer.Ordinal);

    /// <summary>A CA in a temporary directory and a fake process tree under it.</summary>
    public AdminApiTarget()
    {
        _authority = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "ca"), "fuzz.example", _time);
        _procRoot = Path.Combine(_root, "proc");
        int self = Environment.ProcessId;
        WriteStat(self, 1, 1000);
        foreach (int child in ChildPids)
        {
            WriteStat(child, self, 2000);
        }

        WriteStat(StrangerPid, 1, 3000);

        _caller = CallerProcess.Open(self, _procRoot) ?? throw new InvalidOperationException("cannot bind this process as the admin caller");
    }

    /// <inheritdoc />
    public override string Name => "admin-api";

    /// <inheritdoc />
    public override string Activity => string.Join(' ', _outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}"));

    /// <summary>Replies by "METHOD_STATUS" (METHOD: GET, POST, DELETE or other), with counts.</summary>
    public IReadOnlyDictionary<string, long> Outcomes => _outcomes;

    /// <inheritdoc />
    public override void Run(ReadOnlySpan<byte> input)
    {
        var options = new AgentOptions
        {
            TrustDomain = "fuzz.example",
            MeshCidr = "10.200.0.0/24",
            TimeProvider = _time,
            ProcRoot = _procRoot,
            MaxWatchWait = TimeSpan.Zero,
            AdminMaxBodyBytes = 16 * 1024,
            MaxPolicies = 8,
            MaxPolicyBytes = 32 * 1024,
        };
        var registry = new WorkloadRegistry(options.TrustDomain, options.MeshCidr, _time, _procRoot, stateFile: null);
        var policies = new PolicyStore(_time);
        var attestor = new RegisteredWorkloads(_procRoot);
        var api = new AdminApi(registry, policies, attestor, _authority, options, _metrics, "/nonexistent/workload.sock", "/nonexistent/admin.sock");
        foreach (byte[] request in Requests(input))
        {
            Handle(api, request);
        }
    }

    /// <summary>Splits an input into requests at NUL bytes (an empty input is one empty request).</summary>
    public static List<byte[]> Requests(ReadOnlySpan<byte> input)
    {
        var requests = new List<byte[]>();
        while (true)
        {
            int nul = input.IndexOf((byte)0);
            requests.Add((nul < 0 ? input : input[..nul]).ToArray());
            if (nul < 0)
            {
                return requests;
            }

            input = input[(nul + 1)..];
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _caller.Dispose();
        _authority.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private void Handle(AdminApi api, byte[] request)
    {
        int newline = Array.IndexOf(request, (byte)'\n');
        string line = Encoding.UTF8.GetString(request, 0, newline < 0 ? request.Length : newline).TrimEnd('\r');
        byte[] body = newline < 0 ? [] : request[(newline + 1)..];
        int space = line.IndexOf(' ', StringComparison.Ordinal);
        string method = space < 0 ? line : line[..space];
        string target = space < 0 ? "/" : line[(space + 1)..];
        int question = target.IndexOf('?', StringComparison.Ordinal);
        string path = question < 0 ? target : target[..question];

        var context = new DefaultHttpContext();
        context.Features.Set(new AdminCallerFeature(_caller));
        context.Request.Method = method;
        context.Request.Path = new PathString(path.StartsWith('/') ? path : "/" + path);
        context.Request.QueryString = question < 0 ? QueryString.Empty : new QueryString(target[question..]);
        context.Request.Body = new MemoryStream(body, writable: false);
        context.Request.ContentLength = body.Length;
        var response = new MemoryStream();
        context.Response.Body = response;

        api.HandleAsync(context).GetAwaiter().GetResult();
        int status = context.Response.StatusCode;
        string outcome = (method is "GET" or "POST" or "DELETE" ? method : "other") + "_" + status.ToString(CultureInfo.InvariantCulture);
        _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;
        if (!Documented2xx4xx.Contains(status))
        {
            throw new InvalidOperationException($"{method} {target} answered {status}, a status the admin API does not document");
        }

        if (status >= 400)
        {
            using JsonDocument error = JsonDocument.Parse(response.ToArray());
            if (!error.RootElement.TryGetProperty("error", out JsonElement message) || message.ValueKind != JsonValueKind.String
                || string.IsNullOrEmpty(message.GetString()) || message.GetString()!.Contains('\n', StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{method} {target} answered {status} without a one-line error: {Encoding.UTF8.GetString(response.ToArray())}");
            }
        }
    }

    private void WriteStat(int pid, int parent, ulong startTime)
    {
        string directory = Path.Combine(_procRoot, pid.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(directory);
        // Fields 3.. after the command: state, ppid, then 17 more up to the start time (field 22).
        string rest = string.Join(' ', Enumerable.Repeat("0", 17));
        File.WriteAllText(Path.Combine(directory, "stat"), $"{pid} (fuzz) S {parent} {rest} {startTime.ToString(CultureInfo.InvariantCulture)} 0 0\n");
    }
}
