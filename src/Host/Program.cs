// The minivmm program. The command line is built in later commits.
Console.Error.WriteLine("minivmm: nothing here yet");
return 1;
