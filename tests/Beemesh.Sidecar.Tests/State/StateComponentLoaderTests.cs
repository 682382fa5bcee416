using Beemesh.Sidecar.State;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>Dapr <c>Component</c> files of type <c>state.beemesh</c>: parsing, refusals, and the stores a workload gets.</summary>
public sealed class StateComponentLoaderTests : IDisposable
{
    private const string Strong = """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata:
          name: ledger
        spec:
          type: state.beemesh
          version: v1
          metadata:
          - name: consistency
            value: strong
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("beemesh-components-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Component(string name, string consistency = "eventual", string extra = "") =>
        $"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: state.beemesh\n  version: v1\n  metadata:\n  - name: consistency\n    value: {consistency}\n{extra}";

    [Fact]
    public void AStrongComponentParses()
    {
        StateComponent component = Assert.Single(StateComponentLoader.Parse(Strong, "c.yaml"));
        Assert.Equal(new StateStoreSpec("ledger", "strong"), component.Spec);
        Assert.Empty(component.Scopes);
        Assert.Null(component.Namespace);
        Assert.Equal("c.yaml:1:1", component.Origin);
    }

    [Fact]
    public void SeveralDocumentsScopesAndNamespaceParse()
    {
        string yaml = Component("a", "eventual", "scopes:\n- api\n- web\n") + "---\n" +
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\n  namespace: shop\n  labels: {x: y}\nspec:\n  type: state.beemesh\n  version: v1\n  initTimeout: 5s\n---\n";
        IReadOnlyList<StateComponent> components = StateComponentLoader.Parse(yaml, "c.yaml");
        Assert.Equal(2, components.Count);
        Assert.Equal(["api", "web"], components[0].Scopes);
        Assert.Equal(new StateStoreSpec("b", "eventual"), components[1].Spec);
        Assert.Equal("shop", components[1].Namespace);
    }

    [Theory]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec: {type: state.redis, version: v1}\n", "type 'state.redis' is not served")]
    [InlineData("kind: Subscription\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec: {}\n", "kind 'Subscription' is not served")]
    [InlineData("kind: Component\napiVersion: dapr.io/v2\nmetadata: {name: s}\nspec: {type: state.beemesh}\n", "apiVersion 'dapr.io/v2'")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec: {type: state.beemesh, version: v2}\n", "version 'v2'")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec:\n  type: state.beemesh\n  metadata:\n  - {name: consistency, value: linear}\n", "unknown consistency 'linear'")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec:\n  type: state.beemesh\n  metadata:\n  - {name: redisHost, value: x}\n", "unknown metadata item 'redisHost'")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec:\n  type: state.beemesh\n  metadata:\n  - {name: consistency, secretKeyRef: {name: a, key: b}}\n", "secret and environment references are not supported")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec:\n  type: state.beemesh\n  metadata:\n  - {name: consistency, value: strong}\n  - {name: consistency, value: eventual}\n", "consistency is given twice")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: \"a/b\"}\nspec: {type: state.beemesh}\n", "metadata.name 'a/b'")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: \"a=b\"}\nspec: {type: state.beemesh}\n", "metadata.name 'a=b'")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {}\nspec: {type: state.beemesh}\n", "metadata.name is missing")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\n", "spec is missing")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec: {type: state.beemesh, typo: 1}\n", "unknown field spec.typo")]
    [InlineData("kind: Component\nkind: Component\n", "Duplicate key")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec: {type: state.beemesh}\nscopes: api\n", "scopes must be a list")]
    [InlineData("kind: Component\napiVersion: dapr.io/v1alpha1\nmetadata: {name: s}\nspec: {type: state.beemesh}\nscopes: [[api]]\n", "scopes[] must be a string")]
    [InlineData("- a\n- b\n", "the document must be a mapping")]
    [InlineData("kind: [Component\n", "YAML syntax error")]
    [InlineData("a: &x [1, 2]\nb: *x\n", "YAML aliases are not supported")]
    public void BadFilesAreRefusedWithOneLine(string yaml, string reason)
    {
        var e = Assert.Throws<StateComponentException>(() => StateComponentLoader.Parse(yaml, "bad.yaml"));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("bad.yaml", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void DeepNestingIsRefusedBeforeTheModelIsBuilt()
    {
        string yaml = "scopes: " + new string('[', 100_000) + new string(']', 100_000) + "\n";
        var e = Assert.Throws<StateComponentException>(() => StateComponentLoader.Parse(yaml, "deep.yaml"));
        Assert.Contains("nesting deeper than 32 levels", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheErrorNamesTheLine()
    {
        var e = Assert.Throws<StateComponentException>(() => StateComponentLoader.Parse(Strong.Replace("value: strong", "value: quorum", StringComparison.Ordinal), "c.yaml"));
        Assert.StartsWith("c.yaml:10:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADirectoryGivesItsYamlFilesInNameOrder()
    {
        File.WriteAllText(Path.Combine(_dir, "b.yml"), Component("b"));
        File.WriteAllText(Path.Combine(_dir, "a.yaml"), Component("a"));
        File.WriteAllText(Path.Combine(_dir, "notes.txt"), "not a component");
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        Assert.Equal([Path.Combine(_dir, "a.yaml"), Path.Combine(_dir, "b.yml")], StateComponentLoader.Files(_dir));
    }

    [Fact]
    public void MissingPathsEmptyDirectoriesAndLargeFilesAreRefused()
    {
        Assert.Contains("no such file or directory", Assert.Throws<StateComponentException>(() => StateComponentLoader.Files(Path.Combine(_dir, "none"))).Message, StringComparison.Ordinal);
        Assert.Contains("has no .yaml or .yml files", Assert.Throws<StateComponentException>(() => StateComponentLoader.Files(_dir)).Message, StringComparison.Ordinal);
        string large = Path.Combine(_dir, "large.yaml");
        File.WriteAllText(large, "# " + new string('x', StateComponentLoader.MaxFileBytes));
        Assert.Contains("at most 1048576 bytes", Assert.Throws<StateComponentException>(() => StateComponentLoader.Load(large)).Message, StringComparison.Ordinal);
        string binary = Path.Combine(_dir, "binary.yaml");
        File.WriteAllBytes(binary, [0x6b, 0x3a, 0x20, 0xff, 0xfe]);
        Assert.Contains("not UTF-8", Assert.Throws<StateComponentException>(() => StateComponentLoader.Load(binary)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FlagsAndComponentsMakeTheWorkloadsStores()
    {
        File.WriteAllText(Path.Combine(_dir, "ledger.yaml"), Strong);
        File.WriteAllText(Path.Combine(_dir, "cache.yaml"), Component("cache", "eventual", "scopes: [api]\n") + "---\n" + Component("other", "strong", "scopes: [web]\n"));
        var notes = new List<string>();
        List<StateStoreSpec> stores = StateStoreSelection.Resolve(["statestore=eventual"], [_dir], "api", "default", notes);
        Assert.Equal([new StateStoreSpec("statestore", "eventual"), new StateStoreSpec("cache", "eventual"), new StateStoreSpec("ledger", "strong")], stores);
        Assert.Contains(notes, n => n.Contains("component other is scoped to web, not api: skipped", StringComparison.Ordinal));
    }

    [Fact]
    public void NeitherFlagsNorComponentsGiveTheDefaultStore()
    {
        Assert.Equal([StateStoreSpec.Default], StateStoreSelection.Resolve([], [], "api", "default", []));
    }

    [Fact]
    public void AStoreNamedTwiceIsRefused()
    {
        string file = Path.Combine(_dir, "ledger.yaml");
        File.WriteAllText(file, Strong);
        var e = Assert.Throws<StateComponentException>(() => StateStoreSelection.Resolve(["ledger"], [file], "api", "default", []));
        Assert.Contains("state store ledger is already declared by --state ledger", e.Message, StringComparison.Ordinal);
        File.WriteAllText(file, Strong + "\n---\n" + Strong);
        e = Assert.Throws<StateComponentException>(() => StateStoreSelection.Resolve([], [file], "api", "default", []));
        Assert.Contains($"state store ledger is already declared by {file}:1:1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APathWithNothingForTheAppIsRefused()
    {
        string file = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(file, Component("cache", "eventual", "scopes: [web]\n") + "---\n" + Component("ns", "eventual").Replace("  name: ns\n", "  name: ns\n  namespace: shop\n", StringComparison.Ordinal));
        var e = Assert.Throws<StateComponentException>(() => StateStoreSelection.Resolve([], [file], "api", "default", []));
        Assert.Equal($"{file}: no state.beemesh component for app api in namespace default; skipped: cache (scopes web); ns (namespace shop)", e.Message);
        Assert.Equal([new StateStoreSpec("ns", "eventual")], StateStoreSelection.Resolve([], [file], "web2", "shop", []));
    }

    [Fact]
    public void ABadFlagIsRefused()
    {
        var e = Assert.Throws<StateComponentException>(() => StateStoreSelection.Resolve(["a=linear"], [], "api", "default", []));
        Assert.Contains("unknown consistency 'linear'", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<StateComponentException>(() => StateStoreSelection.Resolve(["a", "a=strong"], [], "api", "default", []));
        Assert.Contains("--state a is given twice", e.Message, StringComparison.Ordinal);
    }
}
