using Microsoft.Extensions.Logging;

namespace MiniVmm.Migration.Tests;

public sealed class HotPathPrecompilerTests
{
    [Test]
    public void It_finds_the_per_page_methods()
    {
        string[] names = [.. HotPathPrecompiler.HotMethods().Select(m => $"{m.DeclaringType!.Name}.{m.Name}")];
        Assert.That(names, Does.Contain("RamMigrationHandler.SavePage"));
        Assert.That(names, Does.Contain("MultifdSender.QueuePage"));
        Assert.That(names, Does.Contain("MultifdReceiveChannel.ReadPages"));
        Assert.That(names, Has.Length.GreaterThanOrEqualTo(10));
    }

    [Test]
    public void It_compiles_every_one_of_them()
    {
        var logger = new MessageList();
        Thread thread = HotPathPrecompiler.Start(logger);
        Assert.That(thread.Join(TimeSpan.FromMinutes(1)), Is.True);
        Assert.That(logger.Messages, Has.Some.Match($"precompiled {HotPathPrecompiler.HotMethods().Count} migration hot-path methods"));
        Assert.That(logger.Messages, Has.None.Contains("could not precompile"));
    }

    private sealed class MessageList : ILogger
    {
        private readonly List<string> _messages = [];

        public IReadOnlyList<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_messages)
            {
                _messages.Add(formatter(state, exception));
            }
        }
    }
}
