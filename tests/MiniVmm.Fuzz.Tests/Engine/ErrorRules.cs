using System.Text;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// What counts as a clean refusal of bad input: a typed error the target documents, with no
/// runtime fault anywhere in its chain of inner exceptions. Wrapping a fault in a typed error
/// (as the loader and the analyzer wrap whatever a device throws) still hides a bug, so the whole
/// chain is checked.
/// </summary>
internal static class ErrorRules
{
    // Exceptions that mean the code trusted the input, whoever throws them.
    private static readonly Type[] Faults =
    [
        typeof(NullReferenceException),
        typeof(IndexOutOfRangeException),
        typeof(ArgumentException), // ArgumentOutOfRangeException, ArgumentNullException too
        typeof(InvalidCastException),
        typeof(ArithmeticException), // OverflowException, DivideByZeroException too
        typeof(OutOfMemoryException),
        typeof(KeyNotFoundException),
        typeof(FormatException),
        typeof(NotImplementedException),
        typeof(InsufficientExecutionStackException),
        typeof(AccessViolationException),
        typeof(RankException),
        typeof(ArrayTypeMismatchException),
    ];

    // Exceptions MiniVmm may throw on purpose for a state it refuses, but the runtime throws for
    // misuse (a Nullable without value, a collection changed while enumerated, a disposed object):
    // a fault when the runtime threw them.
    private static readonly Type[] FaultsUnlessThrownByMiniVmm =
    [
        typeof(InvalidOperationException), // ObjectDisposedException too
        typeof(NotSupportedException),
    ];

    /// <summary>The first runtime fault in <paramref name="error"/>'s chain, or null.</summary>
    public static Exception? FindFault(Exception error)
    {
        foreach (Exception link in Chain(error))
        {
            Type type = link.GetType();
            if (Faults.Any(f => f.IsAssignableFrom(type)))
            {
                return link;
            }

            if (FaultsUnlessThrownByMiniVmm.Any(f => f.IsAssignableFrom(type)) && !ThrownByMiniVmm(link))
            {
                return link;
            }
        }

        return null;
    }

    /// <summary>
    /// Throws a <see cref="FuzzFinding"/> unless <paramref name="error"/> is one of
    /// <paramref name="allowed"/> and its chain holds no fault.
    /// </summary>
    public static void RequireTyped(Exception error, string what, params Type[] allowed)
    {
        if (!allowed.Any(a => a.IsInstanceOfType(error)))
        {
            throw new FuzzFinding(
                $"{what} failed with {error.GetType().Name}, not one of its documented errors ({string.Join(", ", allowed.Select(a => a.Name))}): {Describe(error)}",
                error);
        }

        if (FindFault(error) is { } fault)
        {
            throw new FuzzFinding(
                $"{what} failed with a {error.GetType().Name} that wraps a runtime fault ({fault.GetType().Name}): {Describe(error)}",
                error);
        }
    }

    /// <summary>As <see cref="RequireTyped"/>, and the error must say where in the stream it happened.</summary>
    public static void RequireStreamError(Exception error, string what, params Type[] allowed)
    {
        RequireTyped(error, what, allowed);
        if (error is MigrationStreamException { Offset: < 0 })
        {
            throw new FuzzFinding($"{what} failed without a stream offset: {Describe(error)}", error);
        }
    }

    /// <summary>The chain as text, with the innermost fault's stack, for failure messages.</summary>
    public static string Describe(Exception error)
    {
        var text = new StringBuilder();
        foreach (Exception link in Chain(error))
        {
            text.Append(text.Length == 0 ? "" : " <- ").Append(link.GetType().Name).Append(": ").Append(link.Message);
        }

        // Where it escaped, and where the innermost one was thrown.
        foreach (Exception link in new[] { error, Chain(error).Last() }.Distinct())
        {
            if (link.StackTrace is { } stack)
            {
                text.AppendLine().Append("  ").Append(link.GetType().Name).Append(':');
                foreach (string line in stack.Split('\n').Take(12))
                {
                    text.AppendLine().Append("  ").Append(line.TrimEnd());
                }
            }
        }

        return text.ToString();
    }

    private static IEnumerable<Exception> Chain(Exception error)
    {
        var pending = new Stack<Exception>();
        pending.Push(error);
        int guard = 0;
        while (pending.Count > 0 && guard++ < 64)
        {
            Exception link = pending.Pop();
            yield return link;
            if (link is AggregateException aggregate)
            {
                foreach (Exception inner in aggregate.InnerExceptions.Reverse())
                {
                    pending.Push(inner);
                }
            }
            else if (link.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }

    private static bool ThrownByMiniVmm(Exception error) =>
        error.TargetSite?.DeclaringType?.Namespace is { } ns && ns.StartsWith("MiniVmm.", StringComparison.Ordinal)
        && !ns.StartsWith("MiniVmm.Fuzz.", StringComparison.Ordinal);
}
