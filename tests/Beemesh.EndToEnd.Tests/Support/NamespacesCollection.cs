namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// The end-to-end classes share this collection so they run one after another: on two cores,
/// several stacks and bulk transfers at once would make timings, and so the tests, flaky.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NamespacesCollection
{
    /// <summary>The collection's name, for <c>[Collection(NamespacesCollection.Name)]</c>.</summary>
    public const string Name = "namespaces";
}
