using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// Keeps the exceptions logged at warning level or above, so a target can check that nothing a
/// component caught and only logged was a runtime fault (the QMP dispatcher turns any exception
/// of a command into a GenericError and logs it).
/// </summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, string Message, Exception Error)> Errors { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Clear() => Errors.Clear();

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception is not null && IsEnabled(logLevel))
            {
                owner.Errors.Enqueue((category, formatter(state, exception), exception));
            }
        }
    }
}
