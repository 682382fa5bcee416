using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.Tests.Http;

/// <summary>Appends every log line to a file; TestSidecar uses it when BEEMESH_TEST_LOG names one (debugging aid).</summary>
internal sealed class FileLoggerProvider(string path) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new FileLogger(path, categoryName);

    public void Dispose()
    {
    }

    private sealed class FileLogger(string path, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (typeof(FileLogger))
            {
                File.AppendAllText(path, $"{DateTime.Now:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)} {exception}\n");
            }
        }
    }
}
