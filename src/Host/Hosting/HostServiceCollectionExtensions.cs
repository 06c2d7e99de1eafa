using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Machine;
using MiniVmm.Host.Qmp;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Hosting;

/// <summary>Registers everything a <c>minivmm run</c> process is made of.</summary>
public static class HostServiceCollectionExtensions
{
    /// <summary>
    /// Adds the clock, console logging to stderr, metrics (<c>IMeterFactory</c>, so that the
    /// <c>MiniVmm.Migration</c> meter is the container's), the VM, QMP and the runner for
    /// <paramref name="options"/>.
    /// </summary>
    public static IServiceCollection AddMiniVmmHost(this IServiceCollection services, VmOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddLogging(logging => logging
            .SetMinimumLevel(LogLevel.Information)
            .AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.ColorBehavior = LoggerColorBehavior.Disabled;
            })
            .AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace));
        services.AddSingleton(provider => new VirtualMachine(
            provider.GetRequiredService<TimeProvider>(),
            RunState.Prelaunch,
            logger: provider.GetRequiredService<ILogger<VirtualMachine>>()));
        services.AddSingleton<ShutdownLatch>();
        services.AddSingleton<VmRunner>();
        services.AddQmp();
        services.AddMachine(options);
        return services;
    }
}
