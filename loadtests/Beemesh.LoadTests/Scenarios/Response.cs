namespace Beemesh.LoadTests.Scenarios;

/// <summary>Factory for <see cref="StepResult"/> values, named as NBomber names it so scenarios port unchanged.</summary>
public static class Response
{
    private static readonly StepResult s_emptyOk = new(false, null, 0, null);

    /// <summary>A successful request that moved <paramref name="sizeBytes"/> bytes.</summary>
    public static StepResult Ok(long sizeBytes = 0, string? statusCode = null) =>
        sizeBytes == 0 && statusCode is null ? s_emptyOk : new StepResult(false, statusCode, sizeBytes, null);

    /// <summary>A failed request with a reason.</summary>
    public static StepResult Fail(string message, string? statusCode = null, long sizeBytes = 0) =>
        new(true, statusCode, sizeBytes, message);
}
