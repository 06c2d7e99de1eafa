using System.Reflection;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using NUnit.Framework;

namespace MiniVmm.Migration.Testing;

/// <summary>
/// Checks every live savevm handler (<see cref="ISaveVmHandlers"/>) should pass, for any device
/// author's NUnit tests:
/// <code>
/// LiveHandlerConformance.Check(() =&gt; NewSource(), () =&gt; NewDestination(), (s, d) =&gt; Assert.That(...));
/// </code>
/// <list type="bullet">
/// <item><see cref="SaveVmHandlerFeatures"/> agrees with what the class overrides;</item>
/// <item>a whole save (setup, iterate until finished, complete, state) loads into a destination
/// whose state then equals the source's;</item>
/// <item>the pending size of an idle source drains: after completion it is 0;</item>
/// <item>every section body cut short, at every byte (or at as many places as
/// <see cref="LiveHandlerConformanceOptions.TruncationsPerSection"/> allows), fails the load
/// with a <see cref="MigrationStreamException"/> that carries the offset, never another exception.</item>
/// </list>
/// </summary>
public static class LiveHandlerConformance
{
    private static readonly (SaveVmHandlerFeatures Feature, string Method)[] FeatureMethods =
    [
        (SaveVmHandlerFeatures.SaveSetup, nameof(ISaveVmHandlers.SaveSetup)),
        (SaveVmHandlerFeatures.SaveLiveIterate, nameof(ISaveVmHandlers.SaveLiveIterate)),
        (SaveVmHandlerFeatures.SaveLiveCompletePrecopy, nameof(ISaveVmHandlers.SaveLiveCompletePrecopy)),
        (SaveVmHandlerFeatures.SaveState, nameof(ISaveVmHandlers.SaveState)),
    ];

    /// <summary>Runs every check.</summary>
    /// <param name="createSource">A source handler with state worth moving (a new one each call, all alike).</param>
    /// <param name="createDestination">A fresh destination handler.</param>
    /// <param name="assertSameState">Asserts that the destination now holds the source's state.</param>
    /// <param name="options">How to drive the handlers.</param>
    public static void Check(
        Func<ISaveVmHandlers> createSource,
        Func<ISaveVmHandlers> createDestination,
        Action<ISaveVmHandlers, ISaveVmHandlers> assertSameState,
        LiveHandlerConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(createSource);
        ArgumentNullException.ThrowIfNull(createDestination);
        ArgumentNullException.ThrowIfNull(assertSameState);
        options ??= new LiveHandlerConformanceOptions();

        ISaveVmHandlers source = createSource();
        CheckFeatures(source);
        IReadOnlyList<SavedSection> sections = Save(source, options);
        ISaveVmHandlers destination = createDestination();
        Load(destination, sections, options);
        assertSameState(source, destination);
        CheckTruncations(createDestination, sections, options);
    }

    /// <summary>Each stream-shaping feature is declared exactly when the class implements its callback.</summary>
    public static void CheckFeatures(ISaveVmHandlers handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        InterfaceMapping map = handler.GetType().GetInterfaceMap(typeof(ISaveVmHandlers));
        foreach ((SaveVmHandlerFeatures feature, string method) in FeatureMethods)
        {
            int index = Array.FindIndex(map.InterfaceMethods, m => m.Name == method);
            bool implemented = map.TargetMethods[index].DeclaringType != typeof(ISaveVmHandlers);
            bool declared = handler.Features.HasFlag(feature);
            Assert.That(declared, Is.EqualTo(implemented),
                $"{handler.GetType().Name}: Features {(declared ? "declares" : "lacks")} {feature}, but the class {(implemented ? "implements" : "does not implement")} {method}");
        }
    }

    /// <summary>
    /// A whole save as a migration makes it: save_prepare (big lock), setup, iterations until the
    /// handler says it finished, the switchover hook, completion and save_state (those with the
    /// big lock), cleanup. Checks that pending
    /// is 0 after completion. Returns the bodies in stream order.
    /// </summary>
    public static IReadOnlyList<SavedSection> Save(ISaveVmHandlers source, LiveHandlerConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new LiveHandlerConformanceOptions();
        var sections = new List<SavedSection>();
        SaveVmHandlerFeatures features = source.Features;
        using (options.BigLock?.Invoke(source))
        {
            source.SavePrepare();
        }

        try
        {
            if (features.HasFlag(SaveVmHandlerFeatures.SaveSetup))
            {
                sections.Add(Capture(SectionType.Start, source.SaveSetup));
            }

            if (features.HasFlag(SaveVmHandlerFeatures.SaveLiveIterate))
            {
                int round = 0;
                IterationOutcome outcome;
                do
                {
                    Assert.That(++round, Is.LessThanOrEqualTo(options.MaxRounds),
                        $"{source.GetType().Name}: an idle source still had data after {options.MaxRounds} rounds");
                    IterationOutcome last = IterationOutcome.MoreData;
                    sections.Add(Capture(SectionType.Part, stream => last = source.SaveLiveIterate(stream)));
                    outcome = last;
                }
                while (outcome != IterationOutcome.Finished && source.StatePendingExact().Total > 0);
            }

            using (options.BigLock?.Invoke(source))
            {
                options.Switchover?.Invoke(source);
                if (features.HasFlag(SaveVmHandlerFeatures.SaveLiveCompletePrecopy))
                {
                    sections.Add(Capture(SectionType.End, source.SaveLiveCompletePrecopy));
                }

                if (features.HasFlag(SaveVmHandlerFeatures.SaveState))
                {
                    sections.Add(Capture(SectionType.Full, source.SaveState));
                }
            }

            Assert.That(source.StatePendingExact().Total, Is.Zero,
                $"{source.GetType().Name}: data is still pending after completion");
        }
        finally
        {
            using (options.BigLock?.Invoke(source))
            {
                source.SaveCleanup();
            }
        }

        return sections;
    }

    /// <summary>Loads <paramref name="sections"/> as the incoming side does: load_setup, every body in order, load_cleanup (all with the big lock).</summary>
    public static void Load(ISaveVmHandlers destination, IReadOnlyList<SavedSection> sections, LiveHandlerConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(sections);
        options ??= new LiveHandlerConformanceOptions();
        using (options.BigLock?.Invoke(destination))
        {
            destination.LoadSetup();
            try
            {
                foreach (SavedSection section in sections)
                {
                    using MigrationStreamReader reader = VMStateBytes.Reader(section.Body);
                    destination.LoadState(reader, options.VersionId);
                    Assert.That(reader.Offset, Is.EqualTo(section.Body.Length),
                        $"{destination.GetType().Name}: the load of a {section.Type} section did not consume exactly its {section.Body.Length} bytes");
                }
            }
            finally
            {
                destination.LoadCleanup();
            }

            options.AfterLoad?.Invoke(destination);
        }
    }

    /// <summary>
    /// Every section body cut short (the shortest prefixes, then some spread over the rest), after
    /// the bodies before it loaded whole, fails with a stream or data error.
    /// </summary>
    public static void CheckTruncations(
        Func<ISaveVmHandlers> createDestination, IReadOnlyList<SavedSection> sections, LiveHandlerConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(createDestination);
        ArgumentNullException.ThrowIfNull(sections);
        options ??= new LiveHandlerConformanceOptions();
        for (int cut = 0; cut < sections.Count; cut++)
        {
            SavedSection section = sections[cut];
            foreach (int length in Prefixes(section.Body.Length, options.TruncationsPerSection))
            {
                ISaveVmHandlers destination = createDestination();
                using (options.BigLock?.Invoke(destination))
                {
                    destination.LoadSetup();
                    try
                    {
                        for (int i = 0; i < cut; i++)
                        {
                            using MigrationStreamReader whole = VMStateBytes.Reader(sections[i].Body);
                            destination.LoadState(whole, options.VersionId);
                        }

                        using MigrationStreamReader reader = VMStateBytes.Reader(section.Body[..length]);
                        Exception? error = Catch(() => destination.LoadState(reader, options.VersionId));
                        Assert.That(error, Is.Not.Null,
                            $"{destination.GetType().Name}: {section.Type} section #{cut} cut to {length} of {section.Body.Length} bytes loaded without error");
                        Assert.That(error is MigrationStreamException { Offset: >= 0 }, Is.True,
                            $"{destination.GetType().Name}: {section.Type} section #{cut} cut to {length} bytes failed with {error!.GetType().Name} instead of a stream error with an offset: {error}");
                    }
                    finally
                    {
                        destination.LoadCleanup();
                    }
                }
            }
        }
    }

    private static IEnumerable<int> Prefixes(int length, int count)
    {
        if (length <= count)
        {
            return Enumerable.Range(0, length);
        }

        int shortest = count / 2;
        int spread = count - shortest;
        return Enumerable.Range(0, shortest)
            .Concat(Enumerable.Range(0, spread).Select(i => shortest + (int)((long)(length - shortest) * i / spread)))
            .Append(length - 1)
            .Distinct();
    }

    private static SavedSection Capture(SectionType type, Action<MigrationStreamWriter> write)
    {
        var buffer = new MemoryStream();
        using (var writer = new MigrationStreamWriter(buffer, leaveOpen: true))
        {
            write(writer);
        }

        return new SavedSection(type, buffer.ToArray());
    }

    private static Exception? Catch(Action action)
    {
        try
        {
            action();
            return null;
        }
        catch (Exception error) when (error is not AssertionException)
        {
            return error;
        }
    }
}
