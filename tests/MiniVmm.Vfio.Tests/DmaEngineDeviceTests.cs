using System.Numerics;
using MiniVmm.Native;
using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

public class DmaEngineDeviceTests
{
    private const int GuestSize = 1024 * 1024;
    private const int StateMiB = 1;
    private const int Chunks = StateMiB * 1024 * 1024 / DmaEngineDevice.ChunkSize;
    private const int FullState = DataFd.HeaderRecord + Chunks * DataFd.ChunkRecord + DataFd.Tail;

    public static VfioMigrationFlags[] FlagSets => VfioMigrationFsmTests.FlagSets;

    private static DmaEngineDevice Create(RecordingGuestMemory memory, VfioMigrationFlags flags, ulong seed = 7, bool worker = false)
        => new(memory, new DmaEngineOptions
        {
            StateSizeMiB = StateMiB,
            SupportsP2P = flags.HasFlag(VfioMigrationFlags.P2P),
            SupportsPreCopy = flags.HasFlag(VfioMigrationFlags.PreCopy),
            RunWorker = worker,
            Seed = seed,
        });

    private static DmaEngineDevice Create(RecordingGuestMemory memory, ulong seed = 7, bool worker = false)
        => Create(memory, VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy, seed, worker);

    [TestCaseSource(nameof(FlagSets))]
    public void QueryFlagsReportsTheConfiguredCapabilities(VfioMigrationFlags flags)
    {
        using var device = Create(new RecordingGuestMemory(GuestSize), flags);
        Assert.That(device.QueryFlags(), Is.EqualTo(flags));
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Running));
    }

    [Test]
    public void EverySessionOpeningArcReturnsARealDescriptor()
    {
        var memory = new RecordingGuestMemory(GuestSize);
        using var device = Create(memory);
        byte[] buffer = new byte[64];

        // RUNNING -> PRE_COPY
        using (FileDescriptorHandle? fd = device.SetState(VfioDeviceState.PreCopy))
        {
            AssertReadable(fd, buffer);
        }
        // PRE_COPY -> RUNNING -> RUNNING_P2P, then RUNNING_P2P -> PRE_COPY_P2P
        Assert.That(device.SetState(VfioDeviceState.RunningP2P), Is.Null);
        using (FileDescriptorHandle? fd = device.SetState(VfioDeviceState.PreCopyP2P))
        {
            AssertReadable(fd, buffer);
        }
        // PRE_COPY_P2P -> RUNNING_P2P -> STOP, then STOP -> STOP_COPY
        Assert.That(device.SetState(VfioDeviceState.Stop), Is.Null);
        using (FileDescriptorHandle? fd = device.SetState(VfioDeviceState.StopCopy))
        {
            AssertReadable(fd, buffer);
        }
        // STOP_COPY -> STOP -> RESUMING: a descriptor that takes write(2) (and read(2) works on it).
        using (FileDescriptorHandle? fd = device.SetState(VfioDeviceState.Resuming))
        {
            Assert.That(fd, Is.Not.Null);
            Assert.That(fd!.IsInvalid, Is.False);
            Assert.That(fd.CloseOnExec, Is.True);
            Assert.That(fd.Write(new byte[] { 1, 2, 3 }), Is.EqualTo(3));
            Assert.That(fd.Read(buffer), Is.EqualTo(0), "read(2) at the end of what was written");
        }
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Resuming));
    }

    private static void AssertReadable(FileDescriptorHandle? fd, byte[] buffer)
    {
        Assert.That(fd, Is.Not.Null);
        Assert.That(fd!.IsInvalid, Is.False);
        Assert.That(fd.CloseOnExec, Is.True, "the kernel's data fds are O_CLOEXEC");
        // Plain read(2) on the descriptor: the first record is the header.
        fd.ReadExactly(buffer.AsSpan(0, 20));
        Assert.That(BitConverter.ToUInt32(buffer, 0), Is.EqualTo(1u), "header record type");
        Assert.That(BitConverter.ToUInt64(buffer, 12), Is.EqualTo(0x474E45414D44564DUL), "magic");
    }

    [Test]
    public void PreCopyEndsWithEnomsgAndStopCopyWithEof()
    {
        var memory = new RecordingGuestMemory(GuestSize);
        using var device = Create(memory);
        using FileDescriptorHandle fd = device.SetState(VfioDeviceState.PreCopy)!;

        byte[] initial = DataFd.ReadUntilTemporaryEnd(device, fd);
        Assert.That(initial, Has.Length.EqualTo(DataFd.HeaderRecord + Chunks * DataFd.ChunkRecord));
        // Still ENOMSG on the next read: the end is temporary, not EOF.
        Assert.That(Assert.Throws<NativeCallException>(() => device.ReadData(fd, new byte[16]))!.Errno, Is.EqualTo(Errno.ENOMSG));

        Assert.That(device.SetState(VfioDeviceState.StopCopy), Is.Null, "the precopy session continues");
        byte[] tail = DataFd.ReadUntilEof(device, fd);
        Assert.That(tail, Has.Length.EqualTo(DataFd.Tail));
        Assert.That(device.ReadData(fd, new byte[16]), Is.EqualTo(0), "EOF stays EOF");
        Assert.That(fd.Read(new byte[16]), Is.EqualTo(0), "plain read(2) sees the EOF too");
    }

    [Test]
    public void PrecopyInfoCountsInitialThenDirtyBytes()
    {
        var memory = new RecordingGuestMemory(GuestSize);
        using var device = Create(memory);
        Assert.That(Assert.Throws<VfioMigrationException>(() => device.PrecopyInfo())!.Errno, Is.EqualTo(Errno.EINVAL));

        using FileDescriptorHandle fd = device.SetState(VfioDeviceState.PreCopy)!;
        Assert.That(device.PrecopyInfo(), Is.EqualTo(((ulong)(DataFd.HeaderRecord + Chunks * DataFd.ChunkRecord), 0UL)));

        DataFd.ReadExactly(device, fd, DataFd.HeaderRecord + DataFd.ChunkRecord);
        Assert.That(device.PrecopyInfo(), Is.EqualTo(((ulong)((Chunks - 1) * DataFd.ChunkRecord), 0UL)));

        DataFd.ReadUntilTemporaryEnd(device, fd);
        Assert.That(device.PrecopyInfo(), Is.EqualTo((0UL, 0UL)));

        // DMA while in PRE_COPY dirties chunks that were already sent.
        var touched = new HashSet<ulong>();
        for (int i = 0; i < 6; i++)
        {
            Assert.That(device.PerformDma(1), Is.EqualTo(1));
            touched.Add(device.Registers.LastChunk);
        }
        ulong dirty = (ulong)(touched.Count * DataFd.ChunkRecord);
        Assert.That(device.PrecopyInfo(), Is.EqualTo((0UL, dirty)));
        byte[] dirtyData = DataFd.ReadUntilTemporaryEnd(device, fd);
        Assert.That(dirtyData, Has.Length.EqualTo((int)dirty));
        Assert.That(device.PrecopyInfo(), Is.EqualTo((0UL, 0UL)));

        device.SetState(VfioDeviceState.PreCopyP2P);
        Assert.That(device.PrecopyInfo(), Is.EqualTo((0UL, 0UL)), "valid in PRE_COPY_P2P too");
        device.SetState(VfioDeviceState.StopCopy);
        Assert.That(Assert.Throws<VfioMigrationException>(() => device.PrecopyInfo())!.Errno, Is.EqualTo(Errno.EINVAL));
    }

    [Test]
    public void StopCopySizeIsTheLengthOfTheStopCopyData()
    {
        using var device = Create(new RecordingGuestMemory(GuestSize));
        Assert.That(device.StopCopySize(), Is.EqualTo((ulong)FullState));
        device.SetState(VfioDeviceState.Stop);
        using FileDescriptorHandle fd = device.SetState(VfioDeviceState.StopCopy)!;
        byte[] all = DataFd.ReadUntilEof(device, fd);
        Assert.That(all, Has.Length.EqualTo(FullState));
        Assert.That(device.StopCopySize(), Is.EqualTo(0UL));
    }

    [TestCaseSource(nameof(FlagSets))]
    public void SaveInOneDeviceLoadsIntoAnotherThroughAPipe(VfioMigrationFlags flags)
    {
        var sourceMemory = new RecordingGuestMemory(GuestSize);
        var destinationMemory = new RecordingGuestMemory(GuestSize);
        using var source = Create(sourceMemory, flags, seed: 11);
        using var destination = Create(destinationMemory, flags, seed: 99);
        source.PerformDma(200);
        Assert.That(destination.StateDigest(), Is.Not.EqualTo(source.StateDigest()));

        using PipeEnds channel = Pipe.Create();
        using FileDescriptorHandle resumeFd = destination.SetState(VfioDeviceState.Resuming)!;
        Assert.That(destination.GetState(), Is.EqualTo(VfioDeviceState.Resuming));
        var sink = Task.Run(() =>
        {
            // The destination side: copy everything that arrives into the resuming fd.
            byte[] buffer = new byte[256 * 1024];
            long total = 0;
            int count;
            while ((count = channel.Read.Read(buffer)) > 0)
            {
                resumeFd.WriteAll(buffer.AsSpan(0, count));
                total += count;
            }
            return total;
        });

        long sent = 0;
        if (flags.HasFlag(VfioMigrationFlags.PreCopy))
        {
            using FileDescriptorHandle fd = source.SetState(VfioDeviceState.PreCopy)!;
            sent += Forward(DataFd.ReadUntilTemporaryEnd(source, fd), channel.Write);
            source.PerformDma(100);
            source.PrecopyInfo();
            sent += Forward(DataFd.ReadUntilTemporaryEnd(source, fd), channel.Write);
            source.PerformDma(50);
            Assert.That(source.SetState(VfioDeviceState.StopCopy), Is.Null);
            sent += Forward(DataFd.ReadUntilEof(source, fd), channel.Write);
        }
        else
        {
            source.SetState(VfioDeviceState.Stop);
            using FileDescriptorHandle fd = source.SetState(VfioDeviceState.StopCopy)!;
            sent += Forward(DataFd.ReadUntilEof(source, fd), channel.Write);
        }
        channel.Write.Dispose();
        Assert.That(sink.Result, Is.EqualTo(sent));
        resumeFd.Dispose(); // QEMU closes the data fd in load_cleanup, before the VM starts.

        Assert.That(destination.SetState(VfioDeviceState.Running), Is.Null);
        Assert.That(destination.GetState(), Is.EqualTo(VfioDeviceState.Running));
        Assert.That(source.GetState(), Is.EqualTo(VfioDeviceState.StopCopy));
        byte[] sourceDigest = source.StateDigest();
        Assert.That(destination.StateDigest(), Is.EqualTo(sourceDigest));
        Assert.That(destination.Registers, Is.EqualTo(source.Registers));

        // Both continue identically from the migrated state.
        source.SetState(VfioDeviceState.Running);
        source.PerformDma(10);
        destination.PerformDma(10);
        Assert.That(destination.StateDigest(), Is.EqualTo(source.StateDigest()));
    }

    private static long Forward(byte[] data, FileDescriptorHandle channel)
    {
        channel.WriteAll(data);
        return data.Length;
    }

    [Test]
    public void InvalidResumingDataFailsTheArcIntoErrorAndResetRecovers()
    {
        using var device = Create(new RecordingGuestMemory(GuestSize));
        byte[] before = device.StateDigest();
        using (FileDescriptorHandle fd = device.SetState(VfioDeviceState.Resuming)!)
        {
            fd.WriteAll(new byte[100]);
        }
        var error = Assert.Throws<VfioMigrationException>(() => device.SetState(VfioDeviceState.Running));
        Assert.That(error!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Error));
        Assert.That(device.StateDigest(), Is.EqualTo(before), "a bad stream changes nothing");
        Assert.That(device.DmaEnabled, Is.False);

        device.Reset();
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Running));
        Assert.That(device.DmaEnabled, Is.True);
    }

    [Test]
    public void TruncatedStateIsRefused()
    {
        using var source = Create(new RecordingGuestMemory(GuestSize));
        using var destination = Create(new RecordingGuestMemory(GuestSize));
        source.SetState(VfioDeviceState.Stop);
        byte[] all;
        using (FileDescriptorHandle fd = source.SetState(VfioDeviceState.StopCopy)!)
        {
            all = DataFd.ReadUntilEof(source, fd);
        }
        using (FileDescriptorHandle fd = destination.SetState(VfioDeviceState.Resuming)!)
        {
            fd.WriteAll(all.AsSpan(0, all.Length - DataFd.Tail));
        }
        Assert.That(Assert.Throws<VfioMigrationException>(() => destination.SetState(VfioDeviceState.Stop))!.Errno,
            Is.EqualTo(Errno.EINVAL));
        Assert.That(destination.GetState(), Is.EqualTo(VfioDeviceState.Error));
    }

    [Test]
    public void DirtyLoggingReportsExactlyThePagesTheEngineWrote()
    {
        var memory = new RecordingGuestMemory(GuestSize);
        using var device = Create(memory);
        Assert.That(device.DmaLoggingStart([new VfioDmaRange(0, GuestSize)], 4096), Is.EqualTo(4096UL));
        device.PerformDma(40);

        var expected = memory.Writes().Select(w => w.Gpa / 4096).ToHashSet();
        ulong[] bitmap = device.DmaLoggingReport(0, GuestSize, 4096);
        Assert.That(bitmap, Has.Length.EqualTo(GuestSize / 4096 / 64));
        Assert.That(SetBits(bitmap), Is.EquivalentTo(expected));
        Assert.That(SetBits(device.DmaLoggingReport(0, GuestSize, 4096)), Is.Empty, "a report clears what it reports");

        memory.ClearWrites();
        device.PerformDma(25);
        var expectedLarge = memory.Writes().Select(w => w.Gpa / 16384).ToHashSet();
        Assert.That(SetBits(device.DmaLoggingReport(0, GuestSize, 16384)), Is.EquivalentTo(expectedLarge));

        // Only the logged ranges are tracked.
        device.DmaLoggingStop();
        Assert.That(device.DmaLoggingStart([new VfioDmaRange(0, GuestSize / 2)], 4096), Is.EqualTo(4096UL));
        memory.ClearWrites();
        device.PerformDma(40);
        var lowerHalf = memory.Writes().Where(w => w.Gpa < GuestSize / 2).Select(w => w.Gpa / 4096).ToHashSet();
        Assert.That(SetBits(device.DmaLoggingReport(0, GuestSize, 4096)), Is.EquivalentTo(lowerHalf));
        device.DmaLoggingStop();
    }

    private static HashSet<ulong> SetBits(ulong[] bitmap)
    {
        var bits = new HashSet<ulong>();
        for (int word = 0; word < bitmap.Length; word++)
        {
            ulong value = bitmap[word];
            while (value != 0)
            {
                bits.Add((ulong)word * 64 + (ulong)BitOperations.TrailingZeroCount(value));
                value &= value - 1;
            }
        }
        return bits;
    }

    [Test]
    public void DirtyLoggingRejectsBadRequests()
    {
        using var device = Create(new RecordingGuestMemory(GuestSize));
        int Errno(Action call) => Assert.Throws<VfioMigrationException>(call)!.Errno;

        Assert.That(Errno(() => device.DmaLoggingReport(0, 4096, 4096)), Is.EqualTo(Native.Errno.EINVAL), "not started");
        Assert.That(Errno(() => device.DmaLoggingStart([], 4096)), Is.EqualTo(Native.Errno.EINVAL));
        Assert.That(Errno(() => device.DmaLoggingStart([new VfioDmaRange(100, 4096)], 4096)), Is.EqualTo(Native.Errno.EINVAL));
        Assert.That(Errno(() => device.DmaLoggingStart([new VfioDmaRange(0, 8192), new VfioDmaRange(4096, 4096)], 4096)),
            Is.EqualTo(Native.Errno.EINVAL), "overlap");
        Assert.That(Errno(() => device.DmaLoggingStart([new VfioDmaRange(0, 4096)], 3000)), Is.EqualTo(Native.Errno.EINVAL));
        var tooMany = Enumerable.Range(0, 257).Select(i => new VfioDmaRange((ulong)i * 8192, 4096)).ToArray();
        Assert.That(Errno(() => device.DmaLoggingStart(tooMany, 4096)), Is.EqualTo(Native.Errno.E2BIG));
        Assert.That(Errno(() => device.DmaLoggingStart([new VfioDmaRange(ulong.MaxValue - 4095, 8192)], 4096)),
            Is.EqualTo(Native.Errno.EOVERFLOW));

        device.DmaLoggingStart([new VfioDmaRange(0, GuestSize)], 4096);
        Assert.That(Errno(() => device.DmaLoggingReport(0, 4096, 2048)), Is.EqualTo(Native.Errno.EINVAL));
        Assert.That(Errno(() => device.DmaLoggingReport(0, 4096, 12288)), Is.EqualTo(Native.Errno.EINVAL));
        Assert.That(Errno(() => device.DmaLoggingReport(ulong.MaxValue - 10, 4096, 4096)), Is.EqualTo(Native.Errno.EOVERFLOW));
    }

    [Test]
    public void P2PStatesQuiesceDma()
    {
        var memory = new RecordingGuestMemory(GuestSize);
        using var device = Create(memory);
        Assert.That(device.PerformDma(5), Is.EqualTo(5));

        foreach (VfioDeviceState quiet in new[] { VfioDeviceState.RunningP2P, VfioDeviceState.PreCopyP2P })
        {
            using FileDescriptorHandle? fd = device.SetState(quiet);
            Assert.That(device.DmaEnabled, Is.False, quiet.ToString());
            byte[] digest = device.StateDigest();
            byte[] guest = memory.Snapshot();
            int writes = memory.WriteCount;
            Assert.That(device.PerformDma(50), Is.EqualTo(0), quiet.ToString());
            Assert.That(device.StateDigest(), Is.EqualTo(digest), quiet.ToString());
            Assert.That(memory.Snapshot(), Is.EqualTo(guest), quiet.ToString());
            Assert.That(memory.WriteCount, Is.EqualTo(writes), quiet.ToString());
        }
        device.SetState(VfioDeviceState.PreCopy);
        Assert.That(device.PerformDma(3), Is.EqualTo(3), "PRE_COPY runs DMA");
    }

    [Test]
    public void TheBackgroundWorkerStopsInP2PAndResumesInRunning()
    {
        var memory = new RecordingGuestMemory(GuestSize);
        using var device = Create(memory, worker: true);
        Assert.That(SpinWait.SpinUntil(() => device.OperationCount > 0, TimeSpan.FromSeconds(30)), Is.True);

        device.SetState(VfioDeviceState.RunningP2P);
        ulong operations = device.OperationCount;
        int writes = memory.WriteCount;
        byte[] digest = device.StateDigest();
        Thread.Sleep(50); // give a misbehaving worker the chance to write
        Assert.That(device.OperationCount, Is.EqualTo(operations));
        Assert.That(memory.WriteCount, Is.EqualTo(writes));
        Assert.That(device.StateDigest(), Is.EqualTo(digest));

        device.SetState(VfioDeviceState.Running);
        Assert.That(SpinWait.SpinUntil(() => device.OperationCount > operations, TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(device.WorkerError, Is.Null);
    }

    [Test]
    public void LiveMigrationWithTheWorkerRunningConverges()
    {
        var sourceMemory = new RecordingGuestMemory(GuestSize);
        using var source = Create(sourceMemory, seed: 3, worker: true);
        using var destination = Create(new RecordingGuestMemory(GuestSize), seed: 4);
        using FileDescriptorHandle resumeFd = destination.SetState(VfioDeviceState.Resuming)!;

        using FileDescriptorHandle fd = source.SetState(VfioDeviceState.PreCopy)!;
        for (int round = 0; round < 3; round++)
        {
            resumeFd.WriteAll(DataFd.ReadUntilTemporaryEnd(source, fd));
            source.PrecopyInfo(); // arms the chunks dirtied meanwhile
        }
        source.SetState(VfioDeviceState.StopCopy);
        resumeFd.WriteAll(DataFd.ReadUntilEof(source, fd));
        destination.SetState(VfioDeviceState.Stop);
        Assert.That(destination.StateDigest(), Is.EqualTo(source.StateDigest()));
    }

    [Test]
    public void SessionsEndWithEofOnTheirDataFd()
    {
        using var device = Create(new RecordingGuestMemory(GuestSize));
        using FileDescriptorHandle precopy = device.SetState(VfioDeviceState.PreCopy)!;
        device.SetState(VfioDeviceState.Running); // PRE_COPY -> RUNNING ends the session (unread data dropped)
        Assert.That(precopy.Read(new byte[4096]), Is.EqualTo(0));
        Assert.That(device.ReadData(precopy, new byte[4096]), Is.EqualTo(0));

        using FileDescriptorHandle again = device.SetState(VfioDeviceState.PreCopy)!;
        device.Reset();
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Running));
        Assert.That(again.Read(new byte[4096]), Is.EqualTo(0), "reset closes the data session");
    }

    [Test]
    public void InvalidRequestsAreEinvalAndLeaveTheStateAlone()
    {
        using var plain = Create(new RecordingGuestMemory(GuestSize), VfioMigrationFlags.StopCopy);
        foreach (VfioDeviceState bad in new[] { VfioDeviceState.Error, VfioDeviceState.RunningP2P,
                     VfioDeviceState.PreCopy, VfioDeviceState.PreCopyP2P, (VfioDeviceState)8 })
        {
            Assert.That(Assert.Throws<VfioMigrationException>(() => plain.SetState(bad))!.Errno, Is.EqualTo(Errno.EINVAL), bad.ToString());
            Assert.That(plain.GetState(), Is.EqualTo(VfioDeviceState.Running));
        }

        using var full = Create(new RecordingGuestMemory(GuestSize));
        full.SetState(VfioDeviceState.Stop);
        using FileDescriptorHandle fd = full.SetState(VfioDeviceState.StopCopy)!;
        Assert.That(Assert.Throws<VfioMigrationException>(() => full.SetState(VfioDeviceState.PreCopy))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(Assert.Throws<VfioMigrationException>(() => full.SetState(VfioDeviceState.PreCopyP2P))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(full.GetState(), Is.EqualTo(VfioDeviceState.StopCopy));
        Assert.That(DataFd.ReadUntilEof(full, fd), Has.Length.EqualTo(FullState), "the session survives a refused request");
    }

    [Test]
    public void DisposeIsIdempotent()
    {
        var device = Create(new RecordingGuestMemory(GuestSize), worker: true);
        FileDescriptorHandle fd = device.SetState(VfioDeviceState.PreCopy)!;
        device.Dispose();
        device.Dispose();
        Assert.That(fd.Read(new byte[16]), Is.EqualTo(0));
        fd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => device.SetState(VfioDeviceState.Stop));
    }
}
