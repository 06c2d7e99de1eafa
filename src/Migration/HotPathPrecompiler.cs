using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using MiniVmm.Native;

namespace MiniVmm.Migration;

/// <summary>
/// Compiles the migration's per-page methods before the first migration needs them. They are
/// marked <see cref="MethodImplOptions.AggressiveOptimization"/>, so that they never run as
/// unoptimised tier-0 code (a migration ends before tiering would promote them) — which also
/// means that a ReadyToRun image carries no code for them, and the JIT compiled each one, fully
/// optimised, on the migration's own threads at its first page: time on the critical path of a
/// migration that lasts a few hundred milliseconds. This compiles them on one background thread
/// at the lowest scheduling priority while the VM starts; a method it has not reached yet is
/// simply compiled by its first caller, as before.
/// </summary>
public static partial class HotPathPrecompiler
{
    /// <summary>
    /// Starts the background compile of every non-generic method marked AggressiveOptimization in
    /// the MiniVmm.Migration assembly; returns the thread (to join in tests). Any thread; each
    /// call compiles again (a no-op for methods already compiled).
    /// </summary>
    public static Thread Start(ILogger logger)
    {
        var thread = new Thread(() => Run(logger)) { Name = "hot path precompile", IsBackground = true };
        thread.Start();
        return thread;
    }

    /// <summary>The methods <see cref="Start"/> compiles.</summary>
    public static IReadOnlyList<MethodInfo> HotMethods()
    {
        const BindingFlags all = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        return [.. typeof(HotPathPrecompiler).Assembly.GetTypes()
            .Where(type => !type.ContainsGenericParameters)
            .SelectMany(type => type.GetMethods(all))
            .Where(method => (method.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0
                && !method.ContainsGenericParameters && !method.IsAbstract)];
    }

    private static void Run(ILogger logger)
    {
        try
        {
            ThreadNiceness.SetForCurrentThread(ThreadNiceness.Lowest);
        }
        catch (NativeCallException)
        {
            // Compile at normal priority: it is a few dozen milliseconds of CPU, once.
        }

        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        int compiled = 0;
        foreach (MethodInfo method in HotMethods())
        {
            try
            {
                RuntimeHelpers.PrepareMethod(method.MethodHandle);
                compiled++;
            }
            catch (Exception error) when (error is ArgumentException or InvalidOperationException or NotSupportedException or TypeLoadException)
            {
                LogNotCompiled(logger, $"{method.DeclaringType}.{method.Name}", error.Message);
            }
        }

        LogCompiled(logger, compiled, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    [LoggerMessage(EventId = 7300, Level = LogLevel.Debug, Message = "precompiled {Count} migration hot-path methods in {Milliseconds:F1} ms")]
    private static partial void LogCompiled(ILogger logger, int count, double milliseconds);

    [LoggerMessage(EventId = 7301, Level = LogLevel.Debug, Message = "could not precompile {Method}: {Reason}")]
    private static partial void LogNotCompiled(ILogger logger, string method, string reason);
}
