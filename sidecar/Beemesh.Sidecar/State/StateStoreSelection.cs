namespace Beemesh.Sidecar.State;

/// <summary>
/// The stores a workload gets from its <c>--state NAME[=CONSISTENCY]</c> flags and its
/// <c>--resources-path</c> component files, as <c>beemesh run</c> and <c>beemesh sidecar</c> choose them.
/// </summary>
public static class StateStoreSelection
{
    /// <summary>
    /// The stores of workload <paramref name="appId"/> in namespace <paramref name="ns"/>: every
    /// <c>--state</c> flag, then the components of each path that are for this app (no
    /// <c>scopes</c>, or scopes naming it; no <c>metadata.namespace</c>, or its namespace), as Dapr
    /// loads them. Without either, the default store (<c>statestore</c>, eventual). Components for
    /// other apps are skipped and said so in <paramref name="notes"/>.
    /// </summary>
    /// <exception cref="StateComponentException">
    /// A flag or a file is refused, a store name is given twice, or a path holds no component for this app.
    /// </exception>
    public static List<StateStoreSpec> Resolve(IReadOnlyList<string> stateFlags, IReadOnlyList<string> resourcePaths, string appId, string ns, List<string> notes)
    {
        ArgumentNullException.ThrowIfNull(stateFlags);
        ArgumentNullException.ThrowIfNull(resourcePaths);
        ArgumentNullException.ThrowIfNull(notes);
        var stores = new List<StateStoreSpec>();
        var origins = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string text in stateFlags)
        {
            StateStoreSpec spec = StateStoreSpec.TryParse(text, out string? error) ?? throw new StateComponentException(error!);
            if (!origins.TryAdd(spec.Name, $"--state {text}"))
            {
                throw new StateComponentException($"--state {spec.Name} is given twice");
            }

            stores.Add(spec);
        }

        foreach (string path in resourcePaths)
        {
            int before = stores.Count;
            var skipped = new List<string>();
            foreach (string file in StateComponentLoader.Files(path))
            {
                foreach (StateComponent component in StateComponentLoader.Load(file))
                {
                    if (component.Namespace is { } componentNamespace && componentNamespace != ns)
                    {
                        skipped.Add($"{component.Name} (namespace {componentNamespace})");
                        notes.Add($"{component.Origin}: component {component.Name} is for namespace {componentNamespace}, not {ns}: skipped");
                        continue;
                    }

                    if (component.Scopes.Count > 0 && !component.Scopes.Contains(appId, StringComparer.Ordinal))
                    {
                        skipped.Add($"{component.Name} (scopes {string.Join(", ", component.Scopes)})");
                        notes.Add($"{component.Origin}: component {component.Name} is scoped to {string.Join(", ", component.Scopes)}, not {appId}: skipped");
                        continue;
                    }

                    if (origins.TryGetValue(component.Name, out string? first))
                    {
                        throw new StateComponentException($"{component.Origin}: state store {component.Name} is already declared by {first}");
                    }

                    origins.Add(component.Name, component.Origin);
                    stores.Add(component.Spec);
                }
            }

            if (stores.Count == before)
            {
                throw new StateComponentException(skipped.Count == 0
                    ? $"{path}: no {StateComponentLoader.ComponentType} component"
                    : $"{path}: no {StateComponentLoader.ComponentType} component for app {appId} in namespace {ns}; skipped: {string.Join("; ", skipped)}");
            }
        }

        if (stores.Count == 0)
        {
            stores.Add(StateStoreSpec.Default);
        }

        return stores;
    }
}
