using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Beemesh.Agent.Client;
using Beemesh.Agent.Policies;
using Beemesh.Agent.Workloads;
using Beemesh.Authorization;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Spiffe.Processes;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Beemesh.Agent.Hosting;

/// <summary>
/// The admin API's request handling: a small hand-written router rather than minimal-API binding,
/// which keeps it free of reflection and lets every malformed request end in the same one-line
/// JSON error (400) while the agent keeps serving. Only the node's owner may call it: the socket is
/// owner-only, and a caller that is a registered workload or descends from one is refused (403)
/// whatever its uid. A workload may be registered only by its own process or an ancestor of it.
/// </summary>
internal sealed partial class AdminApi
{
    private readonly WorkloadRegistry _workloads;
    private readonly PolicyStore _policies;
    private readonly RegisteredWorkloads _attestor;
    private readonly CertificateAuthority _authority;
    private readonly AgentOptions _options;
    private readonly AgentMetrics _metrics;
    private readonly string _workloadSocket;
    private readonly string _adminSocket;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _applyGate = new(1, 1);
    private readonly State.ChangeFeed _reports;

    public AdminApi(WorkloadRegistry workloads, PolicyStore policies, RegisteredWorkloads attestor, CertificateAuthority authority, AgentOptions options, AgentMetrics metrics, string workloadSocket, string adminSocket)
    {
        _workloads = workloads;
        _policies = policies;
        _attestor = attestor;
        _authority = authority;
        _options = options;
        _metrics = metrics;
        _workloadSocket = workloadSocket;
        _adminSocket = adminSocket;
        _reports = new State.ChangeFeed(options.TimeProvider);
    }

    /// <summary>The agent's counters this API renders on <c>/metrics</c>.</summary>
    internal AgentMetrics Metrics => _metrics;

    /// <summary>Ends every waiting watch (with the unchanged set) so shutdown does not wait for long polls.</summary>
    public void Stop() => _stopping.Cancel();

    public async Task HandleAsync(HttpContext context)
    {
        _metrics.CountRequest();
        try
        {
            CallerProcess? caller = context.Features.Get<AdminCallerFeature>()?.Caller;
            if (caller is null || !caller.IsAlive)
            {
                await ForbiddenAsync(context, "the calling process could not be identified").ConfigureAwait(false);
                return;
            }

            if (_attestor.WorkloadOf(caller.ProcessId, caller.StartTime) is { } workload)
            {
                await ForbiddenAsync(context, workload.ProcessId == caller.ProcessId
                    ? $"the admin API refuses workloads: process {caller.ProcessId} is the registered workload {workload.Id}; only the node's owner may call it"
                    : $"the admin API refuses workloads: process {caller.ProcessId} descends from the registered workload {workload.Id} (process {workload.ProcessId}); only the node's owner may call it").ConfigureAwait(false);
                return;
            }

            await RouteAsync(context, caller).ConfigureAwait(false);
        }
        catch (TooLargeException e)
        {
            _metrics.CountTooLarge();
            await ErrorAsync(context, 413, e.Message).ConfigureAwait(false);
        }
        catch (BadRequestException e)
        {
            await BadRequestAsync(context, e.Message, e.Details).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            await BadRequestAsync(context, "malformed JSON: " + FirstLine(e.Message), null).ConfigureAwait(false);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            await BadRequestAsync(context, FirstLine(e.Message), null).ConfigureAwait(false);
        }
        catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && !context.Response.HasStarted)
        {
            // The change could not be stored durably, so it was not made.
            await ErrorAsync(context, 503, "the agent could not store the change, nothing was changed: " + FirstLine(e.Message)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Connection middleware: binds the calling process (see <see cref="CallerProcess"/>) and takes a
    /// slot from <paramref name="limiter"/>; past a limit the caller gets 429 with the reason and the
    /// connection is closed before any request is read.
    /// </summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> AcceptMiddleware(ConnectionLimiter limiter, string procRoot) => next => async connection =>
    {
        CallerProcess? caller = connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket
            ? CallerProcess.FromSocket(socket, procRoot)
            : null;
        using (caller)
        {
            if (limiter.TryEnter(caller, out string? refusal) is not { } slot)
            {
                byte[] body = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse { Error = "connection refused: " + refusal }, AgentJsonContext.Default.ErrorResponse);
                string head = $"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {body.Length + 1}\r\nConnection: close\r\n\r\n";
                try
                {
                    await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(head)).ConfigureAwait(false);
                    await connection.Transport.Output.WriteAsync(body).ConfigureAwait(false);
                    await connection.Transport.Output.WriteAsync("\n"u8.ToArray()).ConfigureAwait(false);
                    await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // The caller left already.
                }

                return;
            }

            using (slot)
            {
                connection.Features.Set(new AdminCallerFeature(caller!));
                await next(connection).ConfigureAwait(false);
            }
        }
    };

    private async Task RouteAsync(HttpContext context, CallerProcess caller)
    {
        HttpRequest request = context.Request;
        string method = request.Method;
        string[] path = (request.Path.Value ?? "/").Trim('/').Split('/');
        CancellationToken aborted = context.RequestAborted;

        switch (path)
        {
            case ["v1", "workloads"] when method == "POST":
                await RegisterAsync(context, caller).ConfigureAwait(false);
                return;
            case ["v1", "workloads"] when method == "GET":
                await WriteAsync(context, 200, _workloads.List(), AgentJsonContext.Default.ListWorkloadRecord).ConfigureAwait(false);
                return;
            case ["v1", "workloads", "watch"] when method == "GET":
                await WatchAsync(context, _workloads.WatchAsync, _workloads.Snapshot, AgentJsonContext.Default.WorkloadSet).ConfigureAwait(false);
                return;
            case ["v1", "workloads", var id] when method == "DELETE":
                await UnregisterAsync(context, id).ConfigureAwait(false);
                return;
            case ["v1", "resolve"] when method == "GET":
                ServiceRecord? service = _workloads.ResolveService(RequiredQuery(request, "name"));
                await (service is null
                    ? ErrorAsync(context, 404, "no workload is named " + request.Query["name"])
                    : WriteAsync(context, 200, service, AgentJsonContext.Default.ServiceRecord)).ConfigureAwait(false);
                return;
            case ["v1", "resolve-address"] when method == "GET":
                string text = RequiredQuery(request, "address");
                if (!IPAddress.TryParse(text, out IPAddress? address))
                {
                    throw new BadRequestException($"'{text}' is not an IP address");
                }

                await WriteFoundAsync(context, _workloads.ResolveAddress(address), "no workload has mesh address " + text).ConfigureAwait(false);
                return;
            case ["v1", "policies"] when method == "POST":
                await ApplyPoliciesAsync(context).ConfigureAwait(false);
                return;
            case ["v1", "policies"] when method == "GET":
                await WriteAsync(context, 200, _policies.Snapshot(), AgentJsonContext.Default.PolicySet).ConfigureAwait(false);
                return;
            case ["v1", "policies", "watch"] when method == "GET":
                await WatchAsync(context, (epoch, since, wait, token) => _policies.WatchAsync(epoch, since, wait, token), _policies.Snapshot, AgentJsonContext.Default.PolicySet).ConfigureAwait(false);
                return;
            case ["v1", "policies", var ns, var name] when method == "DELETE":
                if (_policies.Delete(ns, name) is null)
                {
                    await ErrorAsync(context, 404, $"no policy {ns}/{name}").ConfigureAwait(false);
                    return;
                }

                await WriteAsync(context, 200, _policies.Snapshot(), AgentJsonContext.Default.PolicySet).ConfigureAwait(false);
                return;
            case ["v1", "connections"] when method == "POST":
                await ReportAsync(context).ConfigureAwait(false);
                return;
            case ["v1", "status"] when method == "GET":
                await WriteAsync(context, 200, Status(), AgentJsonContext.Default.AgentStatus).ConfigureAwait(false);
                return;
            case ["metrics"] when method == "GET":
                await WaitForReportsAsync(context).ConfigureAwait(false);
                context.Response.StatusCode = 200;
                context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                await context.Response.WriteAsync(_metrics.Render(_workloads.Count, _policies.Count, _policies.Version, _workloads.ConnectionCount), aborted).ConfigureAwait(false);
                await context.Response.WriteAsync(MeshMetrics(), aborted).ConfigureAwait(false);
                return;
            default:
                if (await TryRouteMeshAsync(context, path, method).ConfigureAwait(false))
                {
                    return;
                }

                await ErrorAsync(context, 404, $"no such endpoint: {method} {request.Path}").ConfigureAwait(false);
                return;
        }
    }

    /// <summary>
    /// A long poll: <c>?since=EPOCH:VERSION</c> (or a bare <c>VERSION</c>) and <c>&amp;timeout=SECONDS</c>
    /// (capped by <see cref="AgentOptions.MaxWatchWait"/>); answered at a change, at once for another epoch.
    /// </summary>
    private async Task WatchAsync<T>(HttpContext context, Func<string?, long, TimeSpan, CancellationToken, Task<T>> watch, Func<T> snapshot, JsonTypeInfo<T> type)
    {
        string? position = context.Request.Query["since"];
        string? epoch = null;
        long since = -1;
        if (!string.IsNullOrEmpty(position) && !State.ChangeFeed.TryParsePosition(position, out epoch, out since))
        {
            throw new BadRequestException("query parameter 'since' must be VERSION or EPOCH:VERSION");
        }

        long seconds = LongQuery(context.Request, "timeout", (long)_options.MaxWatchWait.TotalSeconds);
        TimeSpan wait = TimeSpan.FromSeconds(Math.Clamp(seconds, 0, (long)_options.MaxWatchWait.TotalSeconds));
        T set;
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token))
        {
            try
            {
                set = await watch(epoch, since, wait, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                set = snapshot();
            }
        }

        await WriteAsync(context, 200, set, type).ConfigureAwait(false);
    }

    private async Task RegisterAsync(HttpContext context, CallerProcess caller)
    {
        WorkloadRegistration request = await ReadJsonAsync(context, AgentJsonContext.Default.WorkloadRegistration).ConfigureAwait(false);
        if (KubernetesNames.CheckLabel("name", request.Name) is { } badName)
        {
            throw new BadRequestException(badName);
        }

        if (request.Namespace is not null && KubernetesNames.CheckLabel("namespace", request.Namespace) is { } badNamespace)
        {
            throw new BadRequestException(badNamespace);
        }

        if (request.Pid == 0)
        {
            // "The caller itself": a sidecar in a container has a pid of its own PID namespace, not
            // this one; the caller's pid as the kernel reports it here (SO_PEERCRED) is the one to register.
            request.Pid = caller.ProcessId;
        }

        if (WorkloadRegistry.Validate(request) is { } problem)
        {
            throw new BadRequestException(problem);
        }

        string ns = request.Namespace ?? "default";
        int pid = request.Pid;
        if (pid == 1)
        {
            await ForbiddenAsync(context, "pid 1 cannot be registered: every process on the node descends from it").ConfigureAwait(false);
            return;
        }

        if (pid == Environment.ProcessId)
        {
            await ForbiddenAsync(context, $"pid {pid} is the agent itself and cannot be registered").ConfigureAwait(false);
            return;
        }

        if (ProcessStat.Read(pid, _options.ProcRoot) is null)
        {
            throw new BadRequestException($"process {pid} does not exist");
        }

        if (!ProcessTree.IsSelfOrDescendant(pid, caller.ProcessId, _options.ProcRoot))
        {
            await ForbiddenAsync(context, $"process {pid} is neither the caller (process {caller.ProcessId}) nor one of its descendants; a workload is registered by the process that started it").ConfigureAwait(false);
            return;
        }

        Beemesh.Spiffe.SpiffeId identity = _workloads.IdentityOf(request.Name!, ns);
        if (_attestor.RegisteredAs(pid) is { } existing)
        {
            WorkloadRecord? same = _workloads.List().FirstOrDefault(r => r.Pid == pid && r.SpiffeId == existing.ToString());
            if (existing == identity && same is not null)
            {
                // The same process asked for the same name again (a retry): answer with what it has.
                await WriteAsync(context, 200, same, AgentJsonContext.Default.WorkloadRecord).ConfigureAwait(false);
                return;
            }

            if (existing != identity)
            {
                await ErrorAsync(context, 409, $"process {pid} is already registered as {existing}; unregister it first").ConfigureAwait(false);
                return;
            }
        }

        if (!_attestor.Register(pid, identity, caller.ProcessId, caller.StartTime))
        {
            throw new BadRequestException($"process {pid} does not exist");
        }

        // A sidecar in another network namespace (a pod's) listens where nobody on the node can dial
        // it: callers reach it through the tunnel port, which hands it their connections.
        bool handoffOnly = NetworkNamespaces.Differ(_options.ProcRoot, caller.ProcessId, Environment.ProcessId);
        if (handoffOnly && _workloads.HandoffEndpoint is null)
        {
            if (!_workloads.IsPidRegistered(pid))
            {
                _attestor.Unregister(pid);
            }

            await ErrorAsync(context, 409, $"process {caller.ProcessId} is in another network namespace and this agent's tunnel port does not listen, so its connections cannot be handed to it").ConfigureAwait(false);
            return;
        }

        WorkloadRecord? record;
        try
        {
            record = _workloads.Add(request, caller.ProcessId, caller.StartTime, handoffOnly);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not stored, so not registered: the pid must not keep the identity either.
            if (!_workloads.IsPidRegistered(request.Pid))
            {
                _attestor.Unregister(request.Pid);
            }

            throw;
        }

        if (record is null)
        {
            if (!_workloads.IsPidRegistered(pid))
            {
                _attestor.Unregister(pid);
            }

            string why = _workloads.AddressRange is { } range
                ? $"mesh range {range} has no free address"
                : $"this node holds no mesh address block (every block of {_options.MeshCidr} is claimed by another node); registrations are refused until one is free";
            await ErrorAsync(context, 409, why).ConfigureAwait(false);
            return;
        }

        await WriteAsync(context, 201, record, AgentJsonContext.Default.WorkloadRecord).ConfigureAwait(false);
    }

    private async Task UnregisterAsync(HttpContext context, string id)
    {
        WorkloadRecord? removed = _workloads.Remove(id);
        if (removed is null)
        {
            await ErrorAsync(context, 404, $"no workload {id}").ConfigureAwait(false);
            return;
        }

        if (!_workloads.IsPidRegistered(removed.Pid))
        {
            _attestor.Unregister(removed.Pid);
        }

        _metrics.Mesh.Depart(removed.Id);
        await WriteAsync(context, 200, removed, AgentJsonContext.Default.WorkloadRecord).ConfigureAwait(false);
    }

    private async Task ApplyPoliciesAsync(HttpContext context)
    {
        string yaml = await ReadTextAsync(context).ConfigureAwait(false);
        PolicyApplyResult? result = null;
        IReadOnlyList<PolicyError> errors = [];
        string? limit;
        // One apply at a time, so the limits checked here still hold when the apply lands.
        await _applyGate.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        try
        {
            limit = PolicyLimitProblem(yaml);
            if (limit is null)
            {
                _policies.Apply(yaml, out result, out errors);
            }
        }
        finally
        {
            _applyGate.Release();
        }

        if (limit is not null)
        {
            _metrics.CountPolicyLimit();
            await ErrorAsync(context, 413, limit).ConfigureAwait(false);
            return;
        }

        if (result is null)
        {
            var details = new List<string>(errors.Count);
            foreach (PolicyError error in errors)
            {
                details.Add(error.ToString());
            }

            throw new BadRequestException($"policy file refused ({errors.Count} error{(errors.Count == 1 ? "" : "s")}); nothing was applied", details);
        }

        await WriteAsync(context, 200, result!, AgentJsonContext.Default.PolicyApplyResult).ConfigureAwait(false);
    }

    // Null when storing the policies of yaml keeps within MaxPolicies and MaxPolicyBytes. A file
    // that does not load is left to PolicyStore.Apply, which reports its errors.
    private string? PolicyLimitProblem(string yaml)
    {
        if (!PolicyLoader.Load(yaml, out IReadOnlyList<AuthorizationPolicy> incoming, out _))
        {
            return null;
        }

        var incomingKeys = new HashSet<(string, string)>(incoming.Select(p => (p.Namespace, p.Name)));
        PolicySet current = _policies.Snapshot();
        int count = incomingKeys.Count;
        long bytes = Encoding.UTF8.GetByteCount(yaml);
        foreach (PolicyDocument document in current.Policies)
        {
            if (!incomingKeys.Contains((document.Namespace, document.Name)))
            {
                count++;
                bytes += Encoding.UTF8.GetByteCount(document.Yaml ?? string.Empty);
            }
        }

        if (count > _options.MaxPolicies)
        {
            return $"policy limit reached: storing this file would make {count} policies (at most {_options.MaxPolicies}); nothing was applied";
        }

        return bytes > _options.MaxPolicyBytes
            ? $"policy limit reached: storing this file would make {bytes} bytes of policy text (at most {_options.MaxPolicyBytes}); nothing was applied"
            : null;
    }

    private async Task ReportAsync(HttpContext context)
    {
        ConnectionReport report = await ReadJsonAsync(context, AgentJsonContext.Default.ConnectionReport).ConfigureAwait(false);
        if (string.IsNullOrEmpty(report.WorkloadId))
        {
            throw new BadRequestException("workloadId is required");
        }

        var connections = new List<LiveConnection>();
        foreach (LiveConnection? connection in report.Connections ?? [])
        {
            if (connection is null || connection.Port is < 0 or > 65535)
            {
                throw new BadRequestException("connections[] must be objects with a port between 0 and 65535");
            }

            connections.Add(connection);
        }

        if (!_workloads.Report(report.WorkloadId, connections, _options.TimeProvider.GetUtcNow(), out WorkloadRecord? reporter))
        {
            await ErrorAsync(context, 404, $"no workload {report.WorkloadId}").ConfigureAwait(false);
            return;
        }

        if (report.SvidSerial is { Length: > 0 and <= 64 } serial && report.SvidNotAfter is DateTimeOffset notAfter)
        {
            _workloads.RecordSvid(report.WorkloadId, serial, notAfter);
        }

        if (report.PolicyVersion is >= 0 and long policyVersion)
        {
            _workloads.RecordPolicyVersion(report.WorkloadId, policyVersion);
        }

        if (report.WorkloadListVersion is >= 0 and long listVersion)
        {
            _workloads.RecordListVersion(report.WorkloadId, report.WorkloadListEpoch, listVersion);
        }

        if (report.Mesh is not null)
        {
            _metrics.Mesh.Update(reporter!.Id, reporter.Name + "." + reporter.Namespace, report.Mesh);
        }

        State.ChangeFeed.Wake(_reports.Bump().Signal);
        context.Response.StatusCode = 204;
    }

    /// <summary>
    /// <c>GET /metrics?since=EPOCH:VERSION&amp;timeout=SECONDS</c> first waits (a long poll, capped by
    /// <see cref="AgentOptions.MaxWatchWait"/>) until a sidecar's connection report was accepted after that
    /// position; without <c>since</c> it answers at once. Either way the answer's
    /// <c>Beemesh-Reports</c> header carries the position of the reports its numbers include.
    /// </summary>
    private async Task WaitForReportsAsync(HttpContext context)
    {
        string? position = context.Request.Query["since"];
        if (!string.IsNullOrEmpty(position))
        {
            if (!State.ChangeFeed.TryParsePosition(position, out string? epoch, out long since))
            {
                throw new BadRequestException("query parameter 'since' must be VERSION or EPOCH:VERSION");
            }

            long seconds = LongQuery(context.Request, "timeout", (long)_options.MaxWatchWait.TotalSeconds);
            TimeSpan wait = TimeSpan.FromSeconds(Math.Clamp(seconds, 0, (long)_options.MaxWatchWait.TotalSeconds));
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            try
            {
                await _reports.WaitAsync(epoch, since, wait, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                // Shutting down: answer with what is there.
            }
        }

        // Read before the numbers are rendered, so a report in between shows up at the next wait.
        context.Response.Headers["Beemesh-Reports"] = _reports.Epoch + ":" + _reports.Version.ToString(CultureInfo.InvariantCulture);
    }

    private AgentStatus Status()
    {
        var status = new AgentStatus
        {
            TrustDomain = _authority.TrustDomain,
            WorkloadApiSocket = _workloadSocket,
            AdminSocket = _adminSocket,
            SvidTtlSeconds = (long)_options.X509SvidTtl.TotalSeconds,
            RootExpires = new DateTimeOffset(_authority.Root.NotAfter.ToUniversalTime()),
            PolicyVersion = _policies.Version,
            PolicyCount = _policies.Count,
            WorkloadListVersion = _workloads.Version,
        };
        foreach (WorkloadRecord record in _workloads.List())
        {
            (List<LiveConnection> connections, DateTimeOffset? at) = _workloads.ReportOf(record.Id);
            (string Serial, DateTimeOffset NotAfter)? svid = _workloads.SvidOf(record.Id);
            status.Workloads.Add(new WorkloadStatus
            {
                Workload = record,
                PidAlive = Directory.Exists(Path.Combine(_options.ProcRoot, record.Pid.ToString(CultureInfo.InvariantCulture))),
                Connections = connections,
                ConnectionsReportedAt = at,
                SvidSerial = svid?.Serial,
                SvidNotAfter = svid?.NotAfter,
                PolicyVersion = _workloads.PolicyVersionOf(record.Id),
                WorkloadListVersion = _workloads.ListVersionOf(record.Id),
            });
        }

        return status;
    }

    private async Task<T> ReadJsonAsync<T>(HttpContext context, JsonTypeInfo<T> type)
        where T : class
    {
        string body = await ReadTextAsync(context).ConfigureAwait(false);
        return JsonSerializer.Deserialize(body, type) ?? throw new BadRequestException("the body must be a JSON object");
    }

    private async Task<string> ReadTextAsync(HttpContext context)
    {
        int maxBodyBytes = _options.AdminMaxBodyBytes;
        if (context.Request.ContentLength > maxBodyBytes)
        {
            throw new TooLargeException($"the body ({context.Request.ContentLength} bytes) exceeds the limit of {maxBodyBytes} bytes");
        }

        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        char[] buffer = new char[4096];
        var text = new StringBuilder();
        int read;
        while ((read = await reader.ReadAsync(buffer, context.RequestAborted).ConfigureAwait(false)) > 0)
        {
            text.Append(buffer, 0, read);
            if (text.Length > maxBodyBytes)
            {
                throw new TooLargeException($"the body exceeds the limit of {maxBodyBytes} bytes");
            }
        }

        return text.ToString();
    }

    private static string RequiredQuery(HttpRequest request, string name)
    {
        string? value = request.Query[name];
        return string.IsNullOrEmpty(value) ? throw new BadRequestException($"query parameter '{name}' is required") : value;
    }

    private static long LongQuery(HttpRequest request, string name, long fallback)
    {
        string? value = request.Query[name];
        if (string.IsNullOrEmpty(value))
        {
            return fallback;
        }

        return long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed)
            ? parsed
            : throw new BadRequestException($"query parameter '{name}' must be an integer");
    }

    private static Task WriteFoundAsync(HttpContext context, WorkloadRecord? record, string notFound) =>
        record is null ? ErrorAsync(context, 404, notFound) : WriteAsync(context, 200, record, AgentJsonContext.Default.WorkloadRecord);

    private Task BadRequestAsync(HttpContext context, string message, List<string>? details)
    {
        _metrics.CountBadRequest();
        return ErrorAsync(context, 400, message, details);
    }

    private Task ForbiddenAsync(HttpContext context, string message)
    {
        _metrics.CountForbidden();
        return ErrorAsync(context, 403, message);
    }

    private static Task ErrorAsync(HttpContext context, int status, string message, List<string>? details = null) =>
        WriteAsync(context, status, new ErrorResponse { Error = message, Details = details }, AgentJsonContext.Default.ErrorResponse);

    private static async Task WriteAsync<T>(HttpContext context, int status, T value, JsonTypeInfo<T> type)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(value, type);
        await context.Response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        await context.Response.Body.WriteAsync("\n"u8.ToArray(), context.RequestAborted).ConfigureAwait(false);
    }

    private static string FirstLine(string text)
    {
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline < 0 ? text : text[..newline].TrimEnd('\r');
    }

    /// <summary>A request the agent refuses with 413.</summary>
    private sealed class TooLargeException(string message) : Exception(message);

    /// <summary>A request the agent refuses with 400.</summary>
    private sealed class BadRequestException(string message, List<string>? details = null) : Exception(message)
    {
        public List<string>? Details { get; } = details;
    }
}

/// <summary>Connection feature holding the admin caller's process, bound at accept.</summary>
internal sealed class AdminCallerFeature(CallerProcess caller)
{
    public CallerProcess Caller { get; } = caller;
}
