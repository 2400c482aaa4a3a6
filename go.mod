module golvs

go 1.26
