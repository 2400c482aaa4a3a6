package proto

// Tables copied verbatim (by sed, not by hand) from
// ../shared/reference/ipvs-features.md §3.4. They are data of the test,
// parsed in tables_test.go and compared cell by cell with the
// implementation, whose tables were transcribed separately from the kernel
// source, so that a transcription error in either shows up.

// specTCPStates is the reference's `tcp_states` table.
const specTCPStates = `
| dir/ev | NO | ES | SS | SR | FW | TW | CL | CW | LA | LI | SA |
|---|---|---|---|---|---|---|---|---|---|---|---|
| IN syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SR |
| IN fin | CL | CW | SS | TW | TW | TW | CL | CW | LA | LI | TW |
| IN ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| IN rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | SR |
| OUT syn | SS | ES | SS | SR | SS | SS | SS | SS | SS | LI | SR |
| OUT fin | TW | FW | SS | TW | FW | TW | CL | TW | LA | LI | TW |
| OUT ack | ES | ES | SS | ES | FW | TW | CL | CW | LA | ES | ES |
| OUT rst | CL | CL | SS | CL | CL | TW | CL | CL | CL | CL | CL |
| INONLY syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SR |
| INONLY fin | CL | FW | SS | TW | FW | TW | CL | CW | LA | LI | TW |
| INONLY ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| INONLY rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |

`

// specTCPStatesDOS is the reference's `tcp_states_dos` (secure_tcp) table.
const specTCPStatesDOS = `
| dir/ev | NO | ES | SS | SR | FW | TW | CL | CW | LA | LI | SA |
|---|---|---|---|---|---|---|---|---|---|---|---|
| IN syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SA |
| IN fin | CL | CW | SS | TW | TW | TW | CL | CW | LA | LI | SA |
| IN ack | ES | ES | SS | SR | FW | TW | CL | CW | CL | LI | SA |
| IN rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |
| OUT syn | SS | ES | SS | SA | SS | SS | SS | SS | SS | LI | SA |
| OUT fin | TW | FW | SS | TW | FW | TW | CL | TW | LA | LI | TW |
| OUT ack | ES | ES | SS | ES | FW | TW | CL | CW | LA | ES | ES |
| OUT rst | CL | CL | SS | CL | CL | TW | CL | CL | CL | CL | CL |
| INONLY syn | SA | ES | ES | SR | SA | SA | SA | SA | SA | SA | SA |
| INONLY fin | CL | FW | SS | TW | FW | TW | CL | CW | LA | LI | TW |
| INONLY ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| INONLY rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |

`

// specSCTPStates is the reference's SCTP table.
const specSCTPStates = `
INPUT
 d   ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL
 i   I1 IN IN CS CR CW CO CE ES SS SR SA IN IN
 i_a CW CW CW CS CR CO CO CE ES SS SR SA RJ CL
 c_e CR IN IN CR CR CW CO CE ES SS SR SA RJ CL
 c_a ES I1 IN CS CR CW CO ES ES SS SR SA RJ CL
 s   SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL
 s_a CL IN IN CS CR CW CO CE ES CL SR CL RJ CL
 s_c CL CL CL CS CR CW CO CE ES SS SR CL RJ CL
 err CL I1 IN CS CR CW CO CL ES SS SR SA RJ CL
 ab  CL CL CL CL CL RJ CL CL CL CL CL CL CL CL
OUTPUT
 d   ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL
 i   CW CW CW CW CW CW CW CW ES CW CW CW CW CW
 i_a CS CS CS CS CR CW CO CE ES SS SR SA RJ CL
 c_e CE CE CE CE CE CE CE CE ES SS SR SA RJ CL
 c_a ES ES ES ES ES ES ES ES ES SS SR SA RJ CL
 s   SS SS SS SS SS SS SS SS SS SS SR SA RJ CL
 s_a SA SA SA SA SA CW CO CE ES SA SA SA RJ CL
 s_c CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL
 err CL CL CL CL CL CW CO CE ES SS SR SA RJ CL
 ab  CL RJ CL CL CL CL CL CL CL CL CL CL CL CL
INPUT-ONLY
 d   ES I1 IN CS CR ES CO CE ES SS SR SA RJ CL
 i   I1 IN IN IN IN IN CO CE ES SS SR SA IN IN
 i_a CE CE CE CE CE CE CO CE ES SS SR SA RJ CL
 c_e ES ES ES ES ES ES CO CE ES SS SR SA RJ CL
 c_a ES I1 IN ES ES CW ES ES ES SS SR SA RJ CL
 s   SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL
 s_a CL IN IN CS CR CW CO CE CL CL SR CL RJ CL
 s_c CL CL CL CL CL CW CO CE ES SS CL CL RJ CL
 err CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL
 ab  CL CL CL CL CL RJ CL CL CL CL CL CL CL CL
`
