using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Migration.ReturnPath;

namespace MiniVmm.Fuzz.Tests.Targets;

/// <summary>
/// The source's return-path reader on its own thread, reading the destination's messages from
/// the migration connection. It must end on every input — after SHUT 0 with no error, or with
/// a <see cref="ReturnPathException"/> naming the offset — and call its failure callback exactly
/// when it failed.
/// </summary>
internal sealed class ReturnPathTarget(IReadOnlyList<FuzzSeed> seeds) : IFuzzTarget
{
    private static readonly TimeSpan ReaderWait = TimeSpan.FromSeconds(5);

    public string Name => "return-path";

    public IReadOnlyList<FuzzSeed> Seeds => seeds;

    public bool BigEndianLengths => true;

    public TimeSpan CaseTimeout => TimeSpan.FromSeconds(10);

    /// <summary>What the destination's writer sends in the usual orders.</summary>
    public static IReadOnlyList<FuzzSeed> CreateSeeds()
    {
        static FuzzSeed Seed(string name, Action<ReturnPathWriter> write)
        {
            var channel = new MemoryStream();
            var writer = new ReturnPathWriter(channel);
            write(writer);
            byte[] bytes = channel.ToArray();
            int[] spots = [.. Enumerable.Range(0, bytes.Length).Where(i => i % 4 == 0)];
            return new FuzzSeed(name, bytes, spots);
        }

        return
        [
            Seed("shut", w => w.SendShut(failed: false)),
            Seed("pong-ack-shut", w =>
            {
                w.SendPong(1);
                w.SendSwitchoverAck();
                w.SendShut(failed: false);
            }),
            Seed("pongs-shut", w =>
            {
                for (uint i = 1; i <= 5; i++)
                {
                    w.SendPong(i * 0x01010101);
                }

                w.SendShut(failed: false);
            }),
        ];
    }

    public string? LastRejection { get; private set; }

    public CaseOutcome Run(byte[] input)
    {
        LastRejection = null;
        int failedCalls = 0;
        var channel = new MemoryStream(input, writable: false);
        using var reader = new ReturnPathReader(channel, failed: () => Interlocked.Increment(ref failedCalls));
        reader.Start();
        if (!reader.Finished.Wait(ReaderWait))
        {
            throw new FuzzFinding($"the return-path reader did not end within {ReaderWait.TotalSeconds} s on a {input.Length}-byte channel");
        }

        // The callback runs just after Finished completes.
        reader.Dispose();
        if (reader.Error is { } error)
        {
            ErrorRules.RequireTyped(error, "the return-path reader", typeof(ReturnPathException));
            LastRejection = error.Message;
            if (error.Offset < 0)
            {
                throw new FuzzFinding($"the return path failed without an offset: {error.Message}");
            }

            if (Volatile.Read(ref failedCalls) != 1)
            {
                throw new FuzzFinding($"the return path failed but its failure callback ran {failedCalls} times: {error.Message}");
            }

            return CaseOutcome.Rejected;
        }

        if (Volatile.Read(ref failedCalls) != 0)
        {
            throw new FuzzFinding("the return path ended cleanly but its failure callback ran");
        }

        return CaseOutcome.Accepted;
    }

    public void Dispose()
    {
    }
}
