using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Fuzz.Tests.Seeds;

/// <summary>
/// The migration streams the fuzzer starts from: QEMU 7.2's fixture stream, and streams MiniVmm
/// writes itself through the real outgoing path (QMP's <c>migrate</c> to a passed descriptor) from
/// machines with RAM, the sample VMState device, an emulated VFIO device and a guest harness
/// with state — with and without return-path and switchover-ack, which add the
/// OPEN_RETURN_PATH/PING commands and VFIO's INIT_DATA_SENT — and one without RAM. Every seed
/// loads into <see cref="MachineShape.Everything"/>.
/// </summary>
internal static class StreamSeeds
{
    private static readonly TimeSpan MigrationWait = TimeSpan.FromSeconds(60);

    public static IReadOnlyList<FuzzSeed> Create(string socketDirectory)
    {
        var seeds = new List<FuzzSeed>
        {
            WithHotSpots("qemu-7.2-fixture", File.ReadAllBytes(QemuFixtures.Qemu72Stream)),
            WithHotSpots("minivmm-everything", Migrate(socketDirectory, MachineShape.Everything with { SampleSeed = 7 }, SourceState.Running)),
            WithHotSpots("minivmm-return-path", Migrate(socketDirectory, MachineShape.Everything with { SampleSeed = 8 }, SourceState.Running, returnPath: true)),
            WithHotSpots("minivmm-ram-sample", Migrate(socketDirectory, new MachineShape(64 << 20, SampleSeed: 5, Vfio: false, Harness: false), SourceState.Paused)),
            WithHotSpots("minivmm-no-ram", Migrate(socketDirectory, new MachineShape(0, SampleSeed: 9, Vfio: false, Harness: false), SourceState.Prelaunch)),
        };
        return seeds;
    }

    /// <summary>The seeds the analyzer walks to their end (it decodes no live section but RAM's, as QEMU's script).</summary>
    public static IReadOnlyList<FuzzSeed> Analyzable(IReadOnlyList<FuzzSeed> seeds) =>
        [.. seeds.Where(s => MigrationStreamAnalyzer.Analyze(new MemoryStream(s.Bytes, writable: false)).Succeeded)];

    /// <summary>
    /// The run state a source migrates from, which its globalstate section carries: a destination
    /// without <c>-S</c> starts only after a stream from a running source. Streams from sources
    /// without a VFIO device are saved from a stopped one, since the destination's VFIO device,
    /// which gets no state from them, cannot start.
    /// </summary>
    private enum SourceState
    {
        Prelaunch,
        Paused,
        Running,
    }

    /// <summary>The bytes of a whole outgoing migration of a machine of <paramref name="shape"/> in <paramref name="state"/>.</summary>
    private static byte[] Migrate(string socketDirectory, MachineShape shape, SourceState state, bool returnPath = false)
    {
        byte[] harnessState = [.. Enumerable.Range(0, 100).Select(i => (byte)(i * 7))];
        using FuzzMachine source = FuzzMachine.Create(shape, socketDirectory, harnessState: harnessState);
        if (source.Memory is { } memory)
        {
            // A few pages with content among the zero pages, as a booted guest would have.
            foreach (long page in new long[] { 0, 1, 5, 256, 4095, (long)(shape.MemoryBytes >> 12) - 1 })
            {
                byte[] bytes = new byte[4096];
                new Random((int)page).NextBytes(bytes);
                memory.Write(page << 12, bytes);
            }
        }

        ScriptedTransport transport;
        if (returnPath)
        {
            source.Migration.SetCapabilities([(MigrationCapabilities.ReturnPath, true), (MigrationCapabilities.SwitchoverAck, true)]);
            var replies = new MemoryStream();
            var writer = new ReturnPathWriter(replies);
            writer.SendPong(1);
            writer.SendSwitchoverAck();
            writer.SendShut(failed: false);
            transport = new ScriptedTransport(replies.ToArray());
        }
        else
        {
            transport = new ScriptedTransport(null);
        }

        source.Migration.PassedDescriptors = _ => transport;
        MigrationSession session;
        using (source.Vm.Bql.Acquire())
        {
            if (state != SourceState.Prelaunch)
            {
                source.Vm.Start().ThrowIfFailed();
            }

            if (state == SourceState.Paused)
            {
                source.Vm.Stop(RunState.Paused).ThrowIfFailed();
            }

            session = source.Migration.StartOutgoing("fd:seed");
        }

        if (!session.Finished.Wait(MigrationWait) || session.Status != MigrationStatus.Completed)
        {
            throw new InvalidOperationException($"writing a seed stream of {shape} did not complete: {session.Status} {session.Error}");
        }

        return transport.Written;
    }

    /// <summary>The seed with the offsets where its sections, EOF and vmdesc start, as the analyzer finds them.</summary>
    private static FuzzSeed WithHotSpots(string name, byte[] bytes)
    {
        // The analyzer stops at the first live section other than RAM's (a VFIO device's, as
        // QEMU's analyze-migration.py does): the sections before it still give hot spots.
        StreamAnalysis analysis = MigrationStreamAnalyzer.Analyze(new MemoryStream(bytes, writable: false));
        var spots = new List<int> { 0 };
        spots.AddRange(analysis.Sections.Select(s => (int)s.Offset));
        if (analysis.ConfigurationOffset >= 0)
        {
            spots.Add((int)analysis.ConfigurationOffset);
        }

        if (analysis.EofOffset is { } eof)
        {
            spots.Add((int)eof);
        }

        if (analysis.VmDescription is { } vmdesc)
        {
            spots.Add((int)vmdesc.Offset);
        }

        if (analysis.Error is { Offset: >= 0 } error)
        {
            spots.Add((int)error.Offset);
        }

        return new FuzzSeed(name, bytes, spots.Distinct().Order().ToArray(), (int?)analysis.VmDescription?.Offset);
    }
}
