using System.CommandLine;
using Beemesh.Agent.Client;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh policy apply -f FILE | list | delete NAME [--namespace NS]</c>: manages the agent's
/// Istio <c>AuthorizationPolicy</c> set. A bad file is refused whole; the agent's errors are printed
/// with their line numbers.
/// </summary>
public static class PolicyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var policy = new Command("policy", "Apply, list and delete authorization policies");
        policy.Subcommands.Add(Apply());
        policy.Subcommands.Add(List());
        policy.Subcommands.Add(Delete());
        return policy;
    }

    private static Command Apply()
    {
        var agentDir = AgentCommand.AgentDirectoryOption();
        var file = new Option<string>("--filename", "-f") { Description = "AuthorizationPolicy YAML file ('-' for stdin)", Required = true };
        var apply = new Command("apply", "Apply every AuthorizationPolicy in a (multi-document) YAML file") { agentDir, file };
        apply.SetAction(async (parse, cancellationToken) =>
        {
            string path = parse.GetValue(file)!;
            string yaml;
            try
            {
                yaml = path == "-" ? await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false) : await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh policy apply: cannot read {path}: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            List<Beemesh.Authorization.PolicyError> nameErrors = CliSupport.PolicyNameErrors(yaml);
            if (nameErrors.Count > 0)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh policy apply: {path}: policy file refused (invalid names); nothing was applied").ConfigureAwait(false);
                foreach (Beemesh.Authorization.PolicyError error in nameErrors)
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"{path}: {error}").ConfigureAwait(false);
                }

                return 2;
            }

            return await AgentCommand.WithClientAsync(parse, "policy apply", parse.GetValue(agentDir)!, async (client, output) =>
            {
                PolicyApplyResult result;
                try
                {
                    result = await client.ApplyPoliciesAsync(yaml, cancellationToken).ConfigureAwait(false);
                }
                catch (AgentApiException e) when (e.Details.Count > 0)
                {
                    // Name the file in each line, as compilers do, so editors can jump to it.
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh policy apply: {path}: {e.Message}").ConfigureAwait(false);
                    foreach (string detail in e.Details)
                    {
                        await parse.InvocationConfiguration.Error.WriteLineAsync($"{path}: {detail}").ConfigureAwait(false);
                    }

                    return 1;
                }

                foreach (string name in result.Applied)
                {
                    await output.WriteLineAsync($"authorizationpolicy {name} applied").ConfigureAwait(false);
                }

                await output.WriteLineAsync($"policy version {result.Version}").ConfigureAwait(false);
                return 0;
            }).ConfigureAwait(false);
        });
        return apply;
    }

    private static Command List()
    {
        var agentDir = AgentCommand.AgentDirectoryOption();
        var list = new Command("list", "List the agent's policies") { agentDir };
        list.SetAction((parse, cancellationToken) => AgentCommand.WithClientAsync(parse, "policy list", parse.GetValue(agentDir)!, async (client, output) =>
        {
            PolicySet set = await client.ListPoliciesAsync(cancellationToken).ConfigureAwait(false);
            await output.WriteLineAsync($"{"NAMESPACE",-20} {"NAME",-30} ACTION").ConfigureAwait(false);
            foreach (PolicyDocument p in set.Policies)
            {
                await output.WriteLineAsync($"{p.Namespace,-20} {p.Name,-30} {p.Action}").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"policy version {set.Version}").ConfigureAwait(false);
            return 0;
        }));
        return list;
    }

    private static Command Delete()
    {
        var agentDir = AgentCommand.AgentDirectoryOption();
        var name = new Argument<string>("name") { Description = "The policy's name" };
        var ns = new Option<string>("--namespace", "-n") { Description = "The policy's namespace", DefaultValueFactory = _ => "default" };
        var delete = new Command("delete", "Delete a policy") { agentDir, name, ns };
        delete.SetAction(async (parse, cancellationToken) =>
        {
            if ((Beemesh.Authorization.KubernetesNames.CheckSubdomain("policy name", parse.GetValue(name))
                ?? Beemesh.Authorization.KubernetesNames.CheckLabel("--namespace", parse.GetValue(ns))) is { } badName)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh policy delete: {badName}").ConfigureAwait(false);
                return 2;
            }

            return await DeleteAsync(parse, cancellationToken).ConfigureAwait(false);
        });
        return delete;

        Task<int> DeleteAsync(ParseResult parse, CancellationToken cancellationToken) => AgentCommand.WithClientAsync(parse, "policy delete", parse.GetValue(agentDir)!, async (client, output) =>
        {
            string policyName = parse.GetValue(name)!;
            string policyNamespace = parse.GetValue(ns)!;
            if (!await client.DeletePolicyAsync(policyNamespace, policyName, cancellationToken).ConfigureAwait(false))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"beemesh policy delete: no policy {policyNamespace}/{policyName}").ConfigureAwait(false);
                return 1;
            }

            await output.WriteLineAsync($"authorizationpolicy {policyNamespace}/{policyName} deleted").ConfigureAwait(false);
            return 0;
        });
    }
}
